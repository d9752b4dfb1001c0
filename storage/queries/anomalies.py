"""Anomaly episodes: filtered, newest first, in keyset pages; acknowledged and resolved."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row


@dataclass(frozen=True, slots=True)
class EpisodeFilter:
    """Filters of the episode list; None matches everything."""

    start: datetime | None = None
    """Episodes still open at or ending after this time."""
    end: datetime | None = None
    """Episodes started before this time."""
    kind: str | None = None
    device: str | None = None
    gateway: str | None = None
    """The gateway's own episodes (a silent gateway) and those of its devices."""
    metric: str | None = None
    detector: str | None = None
    severity: str | None = None
    state: str | None = None
    """``open`` or ``closed``: the detector's side."""
    lifecycle: str | None = None
    """``open``, ``acknowledged``, ``resolved`` or ``unresolved``: the people's side."""
    q: str | None = None
    """Text in the device or gateway id, or in a comment (case-insensitive)."""

    def params(self) -> dict[str, Any]:
        q = None
        if self.q is not None:  # a literal substring: LIKE's own wildcards escaped
            q = "%" + self.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        return {**asdict(self), "q": q}


_LIFECYCLE = """
CASE WHEN e.resolved_at IS NOT NULL THEN 'resolved'
     WHEN e.acked_at IS NOT NULL THEN 'acknowledged' ELSE 'open' END
"""

_COLUMNS = (
    """
SELECT e.id, d.device_id, g.gateway_id AS gateway, d.kind, m.name AS metric,
       e.detector, e.started_at, e.ended_at, e.peak_score, e.severity, e.observed, e.expected,
       e.acked_at, e.acked_by, e.ack_comment, e.resolved_at, e.resolved_by, e.resolve_comment,
"""
    + _LIFECYCLE
    + """ AS lifecycle
FROM episodes e
LEFT JOIN devices d ON d.id = e.device
LEFT JOIN gateways g ON g.id = coalesce(e.gateway, d.gateway)
LEFT JOIN metrics m ON m.id = e.metric
"""
)

_LIST = (
    _COLUMNS
    + """
WHERE (%(start)s::timestamptz IS NULL OR e.ended_at IS NULL OR e.ended_at >= %(start)s)
  AND (%(end)s::timestamptz IS NULL OR e.started_at < %(end)s)
  AND (%(kind)s::text IS NULL OR d.kind = %(kind)s)
  AND (%(device)s::text IS NULL OR d.device_id = %(device)s)
  AND (%(gateway)s::text IS NULL OR g.gateway_id = %(gateway)s)
  AND (%(metric)s::text IS NULL OR m.name = %(metric)s)
  AND (%(detector)s::text IS NULL OR e.detector = %(detector)s)
  AND (%(severity)s::text IS NULL OR e.severity = %(severity)s)
  AND (%(state)s::text IS NULL OR (%(state)s = 'open') = (e.ended_at IS NULL))
  AND (%(lifecycle)s::text IS NULL
       OR (%(lifecycle)s = 'unresolved' AND e.resolved_at IS NULL)
       OR """
    + _LIFECYCLE
    + """ = %(lifecycle)s)
  AND (%(q)s::text IS NULL OR d.device_id ILIKE %(q)s OR g.gateway_id ILIKE %(q)s
       OR e.ack_comment ILIKE %(q)s OR e.resolve_comment ILIKE %(q)s)
  AND (%(after_t)s::timestamptz IS NULL OR (e.started_at, e.id) < (%(after_t)s, %(after_id)s))
ORDER BY e.started_at DESC, e.id DESC
LIMIT %(limit)s
"""
)


async def list_anomalies(
    conn: psycopg.AsyncConnection[Any],
    f: EpisodeFilter,
    *,
    after: tuple[datetime, int] | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Episodes matching ``f``, newest first, those after ``after`` (started_at, id)."""
    after_t, after_id = after or (None, None)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            _LIST, {**f.params(), "after_t": after_t, "after_id": after_id, "limit": limit}
        )
        return await cur.fetchall()


async def get_anomaly(conn: psycopg.AsyncConnection[Any], episode_id: int) -> dict[str, Any] | None:
    """One episode, or None."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_COLUMNS + " WHERE e.id = %s", (episode_id,))
        return await cur.fetchone()


# The first acknowledgement stands: a second one changes nothing (two people pressing the
# button at once are both told who was first).
_ACK = """
UPDATE episodes SET acked_at = now(), acked_by = %(by)s, ack_comment = %(comment)s
WHERE id = %(id)s AND acked_at IS NULL
"""
# Resolving acknowledges too when nobody had; resolving twice changes nothing.
_RESOLVE = """
UPDATE episodes SET resolved_at = now(), resolved_by = %(by)s, resolve_comment = %(comment)s,
       acked_at = coalesce(acked_at, now()), acked_by = coalesce(acked_by, %(by)s),
       ack_comment = CASE WHEN acked_at IS NULL THEN %(comment)s ELSE ack_comment END
WHERE id = %(id)s AND resolved_at IS NULL
"""


async def acknowledge(
    conn: psycopg.AsyncConnection[Any], episode_id: int, *, by: str, comment: str
) -> dict[str, Any] | None:
    """Acknowledge an episode (first acknowledgement wins); the episode after, or None."""
    await conn.execute(_ACK, {"id": episode_id, "by": by, "comment": comment})
    return await get_anomaly(conn, episode_id)


async def resolve(
    conn: psycopg.AsyncConnection[Any], episode_id: int, *, by: str, comment: str
) -> dict[str, Any] | None:
    """Resolve an episode (acknowledging it if nobody had); the episode after, or None."""
    await conn.execute(_RESOLVE, {"id": episode_id, "by": by, "comment": comment})
    return await get_anomaly(conn, episode_id)
