"""Writing anomaly episodes: open ones inserted, closing ones completed."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg.rows import TupleRow

from storage.database import map_errors


@dataclass(frozen=True, slots=True)
class EpisodeChange:
    device: int
    metric: int | None
    detector: str
    opened: bool  # else closed
    start_us: int
    end_us: int
    peak: float
    observed: float


def severity(peak: float) -> str:
    """high from 0.95, medium from 0.8, low below."""
    return "high" if peak >= 0.95 else "medium" if peak >= 0.8 else "low"


_OPEN = (
    "INSERT INTO episodes (device, metric, detector, started_at, peak_score, severity, observed)"
    " VALUES (%s, %s, %s, 'epoch'::timestamptz + %s * INTERVAL '1 microsecond', %s, %s, %s)"
    " ON CONFLICT DO NOTHING"
)
_CLOSE = (
    "UPDATE episodes SET ended_at = 'epoch'::timestamptz + %s * INTERVAL '1 microsecond',"
    " peak_score = %s, severity = %s, observed = %s, updated_at = now()"
    " WHERE device = %s AND coalesce(metric, -1) = coalesce(%s::int2, -1) AND detector = %s"
    " AND ended_at IS NULL"
)


async def write_episodes(
    conn: psycopg.AsyncConnection[TupleRow], changes: list[EpisodeChange]
) -> None:
    """Apply openings and closings in order, in one transaction."""
    if not changes:
        return
    with map_errors():
        async with conn.transaction(), conn.cursor() as cur:
            for c in changes:
                if c.opened:
                    await cur.execute(
                        _OPEN,
                        (
                            c.device,
                            c.metric,
                            c.detector,
                            c.start_us,
                            c.peak,
                            severity(c.peak),
                            c.observed,
                        ),
                    )
                else:
                    await cur.execute(
                        _CLOSE,
                        (
                            c.end_us,
                            c.peak,
                            severity(c.peak),
                            c.observed,
                            c.device,
                            c.metric,
                            c.detector,
                        ),
                    )
