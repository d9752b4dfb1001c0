"""Anomaly episodes, filtered, newest first, in keyset pages."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row


@dataclass(frozen=True, slots=True)
class AnomalyFilter:
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
    """``open`` or ``closed``."""


_LIST = """
SELECT e.id, d.device_id AS device, g.gateway_id AS gateway, d.kind, m.name AS metric,
       e.detector, e.started_at, e.ended_at, e.peak_score, e.severity, e.observed
FROM episodes e
LEFT JOIN devices d ON d.id = e.device
LEFT JOIN gateways g ON g.id = coalesce(e.gateway, d.gateway)
LEFT JOIN metrics m ON m.id = e.metric
WHERE (%(start)s::timestamptz IS NULL OR e.ended_at IS NULL OR e.ended_at >= %(start)s)
  AND (%(end)s::timestamptz IS NULL OR e.started_at < %(end)s)
  AND (%(kind)s::text IS NULL OR d.kind = %(kind)s)
  AND (%(device)s::text IS NULL OR d.device_id = %(device)s)
  AND (%(gateway)s::text IS NULL OR g.gateway_id = %(gateway)s)
  AND (%(metric)s::text IS NULL OR m.name = %(metric)s)
  AND (%(detector)s::text IS NULL OR e.detector = %(detector)s)
  AND (%(severity)s::text IS NULL OR e.severity = %(severity)s)
  AND (%(state)s::text IS NULL OR (%(state)s = 'open') = (e.ended_at IS NULL))
  AND (%(after_t)s::timestamptz IS NULL OR (e.started_at, e.id) < (%(after_t)s, %(after_id)s))
ORDER BY e.started_at DESC, e.id DESC
LIMIT %(limit)s
"""


async def list_anomalies(
    conn: psycopg.AsyncConnection[Any],
    f: AnomalyFilter,
    *,
    after: tuple[datetime, int] | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Episodes matching ``f``, newest first, those after ``after`` (started_at, id)."""
    after_t, after_id = after or (None, None)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            _LIST, {**asdict(f), "after_t": after_t, "after_id": after_id, "limit": limit}
        )
        return await cur.fetchall()
