"""Explicit limits on what a gateway may send; beyond them input becomes a dead letter."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    """Input limits of the ingester (settings ``CITYTEL_MAX_*``, ``CITYTEL_FUTURE_TOLERANCE_S``)."""

    max_payload_bytes: int = 1 << 20
    max_readings_per_message: int = 10_000
    max_metrics_per_reading: int = 64
    future_tolerance_s: float = 300.0
    earliest_ms: int = 946_684_800_000
    """2000-01-01T00:00:00Z: readings stamped earlier come from a gateway without a clock."""
    dead_letter_payload_bytes: int = 64 << 10
    """How much of a rejected payload is kept in the dead letter."""
    max_dead_letters_per_message: int = 100
    """Dead-letter rows one message may cause; beyond them one row counts the rest."""
    max_attribute_depth: int = 16
    """How deeply a device's ``attributes`` may nest."""
    max_attribute_bytes: int = 16 << 10
    """How large a device's ``attributes`` may be, encoded as JSON."""
