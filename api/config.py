"""The API's configuration values, with their defaults written once (no FastAPI import)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    """What one request may cost (settings ``CITYTEL_API_*``)."""

    max_points: int = 20_000
    """Points (values or buckets) per JSON response; exports stream without this cap."""
    statement_timeout_ms: int = 5_000
    """Per SQL statement, on every connection of the API's pool."""
    pool_timeout_s: float = 5.0
    """How long a request waits for a pooled connection before a 503."""
    max_in_flight: int = 64
    """Requests served at once (``/healthz`` and ``/readyz`` aside); more get a 503 at once."""
    seq_epoch_gap: int = 10_000
    """A gateway's seq jump above this starts a new counting epoch (a restart), not lost
    messages: the contract restarts seq from the time in milliseconds."""
