"""Gateways: status, last seen, message rate and lost messages (gaps in seq)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

# Lost messages: the gaps between consecutive seqs committed in the window, per gateway.
# A gap at the window's edges is not counted (its other end is outside the window).
_LIST = """
WITH w AS (
    SELECT gateway, seq - lag(seq) OVER (PARTITION BY gateway ORDER BY seq) - 1 AS gap
    FROM messages WHERE received_at >= %(since)s
), per AS (
    SELECT gateway, count(*) AS messages, coalesce(sum(gap) FILTER (WHERE gap > 0), 0) AS lost
    FROM w GROUP BY gateway
)
SELECT g.gateway_id, g.status, g.status_at, g.last_seen, g.last_seq,
       g.messages AS messages_total, coalesce(per.messages, 0) AS messages,
       coalesce(per.lost, 0) AS lost_messages,
       (SELECT count(*) FROM devices d WHERE d.gateway = g.id) AS devices,
       (SELECT count(*) FROM dead_letters x
        WHERE x.gateway_id = g.gateway_id AND x.received_at >= %(since)s) AS refused_messages
FROM gateways g LEFT JOIN per ON per.gateway = g.id
WHERE (%(status)s::text IS NULL OR g.status = %(status)s)
  AND (%(gateway)s::text IS NULL OR g.gateway_id = %(gateway)s)
ORDER BY g.gateway_id
"""


async def list_gateways(
    conn: psycopg.AsyncConnection[Any],
    *,
    since: datetime,
    status: str | None = None,
    gateway: str | None = None,
) -> list[dict[str, Any]]:
    """Every gateway (or the one named) with the messages committed since ``since``, the
    seqs missing among them (``lost_messages``) and its messages dead-lettered since then
    (``refused_messages``)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_LIST, {"since": since, "status": status, "gateway": gateway})
        return await cur.fetchall()
