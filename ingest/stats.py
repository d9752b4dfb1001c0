"""Counters of the ingester, for logs, benchmarks and (later) ``/metrics``."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(slots=True)
class IngestStats:
    deliveries: int = 0
    """Messages the broker handed us (all channels)."""
    messages: int = 0
    """Telemetry messages committed for the first time."""
    duplicates: int = 0
    """Telemetry messages whose identity was already committed (re-deliveries, re-sends)."""
    values: int = 0
    late_values: int = 0
    """Values that arrived after their 1-minute window had closed (stored, merged late)."""
    batches: int = 0
    write_retries: int = 0
    episodes_opened: dict[str, int] = field(default_factory=dict)
    """Anomaly episodes opened, by detector."""
    dead_letters: Counter[str] = field(default_factory=Counter)
    """Dead letters committed, by reason."""
    catalog_version: int = 0
    """The catalog version batches are checked against (0: the shipped one)."""
