"""Writing anomaly episodes: open ones inserted, closing ones completed."""

from __future__ import annotations

import psycopg
from psycopg.rows import TupleRow

from devices.columns import EpisodeChange
from storage.database import map_errors


def severity(peak: float) -> str:
    """high from 0.95, medium from 0.8, low below."""
    return "high" if peak >= 0.95 else "medium" if peak >= 0.8 else "low"


_OPEN = (
    "INSERT INTO episodes (device, metric, gateway, detector, started_at, peak_score, severity,"
    " observed) VALUES (%s, %s, %s, %s, 'epoch'::timestamptz + %s * INTERVAL '1 microsecond',"
    " %s, %s, %s) ON CONFLICT DO NOTHING"
)
_SET = (
    "UPDATE episodes SET ended_at = 'epoch'::timestamptz + %s * INTERVAL '1 microsecond',"
    " peak_score = %s, severity = %s, observed = %s, updated_at = now()"
)
_CLOSE = (
    _SET + " WHERE device = %s AND coalesce(metric, -1) = coalesce(%s::int2, -1)"
    " AND detector = %s AND ended_at IS NULL"
)
_CLOSE_GATEWAY = (
    _SET + " WHERE device IS NULL AND gateway = %s AND detector = %s AND ended_at IS NULL"
)


async def write_episodes(
    conn: psycopg.AsyncConnection[TupleRow], changes: list[EpisodeChange]
) -> None:
    """Apply openings and closings in order, in one transaction."""
    if not changes:
        return
    with map_errors():
        # one round trip for the lot, in order: a restart can bring bursts of changes
        async with conn.transaction(), conn.pipeline(), conn.cursor() as cur:
            for c in changes:
                level = severity(c.peak)
                if c.opened:
                    subject = (c.device, c.metric, c.gateway, c.detector, c.start_us)
                    await cur.execute(_OPEN, (*subject, c.peak, level, c.observed))
                    continue
                end = (c.end_us, c.peak, level, c.observed)
                if c.device is None:
                    await cur.execute(_CLOSE_GATEWAY, (*end, c.gateway, c.detector))
                else:
                    await cur.execute(_CLOSE, (*end, c.device, c.metric, c.detector))
