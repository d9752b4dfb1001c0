"""Gateways: status, last seen, message rate and lost messages (gaps in seq)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

# Lost messages: the gaps between consecutive seqs committed in the look-back, per gateway.
# A gap at the look-back's edges is not counted (its other end is outside the look-back), nor
# one wider than epoch_gap: a gateway that restarts its seq (from the time in ms, as
# docs/contract.md says) starts a new counting epoch, it did not lose the jump.
# Messages refused whole (no seq of theirs was stored) are refused, not lost.
_REFUSED_WHOLE = (
    "payload_too_large", "malformed", "invalid_message", "gateway_mismatch",
    "too_many_readings", "retained", "conflicting_duplicate", "storage_rejected",
)  # fmt: skip
_LIST = """
WITH w AS (
    SELECT gateway, seq - lag(seq) OVER (PARTITION BY gateway ORDER BY seq) - 1 AS gap
    FROM messages WHERE received_at >= %(since)s
), per AS (
    SELECT gateway, count(*) AS messages,
           coalesce(sum(gap) FILTER (WHERE gap > 0 AND gap <= %(epoch_gap)s), 0) AS lost,
           1 + count(*) FILTER (WHERE gap > %(epoch_gap)s) AS epochs
    FROM w GROUP BY gateway
), refused AS (
    SELECT gateway_id, count(*) AS n FROM dead_letters
    WHERE received_at >= %(since)s AND reason = ANY(%(whole)s) AND gateway_id IS NOT NULL
    GROUP BY gateway_id
)
SELECT g.gateway_id, g.status, g.status_at, g.last_seen, g.last_seq,
       g.messages_total, coalesce(per.messages, 0) AS messages,
       coalesce(per.lost, 0) AS lost_messages, coalesce(per.epochs, 1) AS seq_epochs,
       coalesce(refused.n, 0) AS refused_messages,
       (SELECT count(*) FROM devices d WHERE d.gateway = g.id) AS devices
FROM gateways g LEFT JOIN per ON per.gateway = g.id
LEFT JOIN refused ON refused.gateway_id = g.gateway_id
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
    epoch_gap: int = 10_000,
) -> list[dict[str, Any]]:
    """Every gateway (or the one named) with the messages committed since ``since``,
    the seqs missing among them (``lost_messages``, jumps above ``epoch_gap`` start a
    new ``seq_epochs``) and the messages refused whole (``refused_messages``)."""
    params = {
        "since": since,
        "status": status,
        "gateway": gateway,
        "epoch_gap": epoch_gap,
        "whole": list(_REFUSED_WHOLE),
    }
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_LIST, params)
        return await cur.fetchall()
