"""Figures for ``/metrics``, read from the database so that they hold whichever process
(or how many) ingests: messages and values committed, publish-to-commit lag, batch
sizes (messages committed in one transaction share its ``xmin``), dead letters by
reason, episodes by detector, gateways by status."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg

_RECENT = """
WITH recent AS (
    SELECT xmin::text AS tx, "values",
           extract(epoch FROM committed_at - coalesce(sent_at, received_at)) AS lag
    FROM messages WHERE received_at >= now() - make_interval(secs => %(lookback)s)
), batches AS (SELECT count(*) AS n FROM recent GROUP BY tx)
SELECT (SELECT count(*) FROM recent), (SELECT coalesce(sum("values"), 0) FROM recent),
       (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY lag) FROM recent),
       (SELECT percentile_cont(0.99) WITHIN GROUP (ORDER BY lag) FROM recent),
       (SELECT count(*) FROM batches), (SELECT avg(n) FROM batches),
       (SELECT max(n) FROM batches),
       (SELECT coalesce(sum(messages_total), 0) FROM gateways),
       (SELECT extract(epoch FROM now() - max(committed_at)) FROM messages
         WHERE received_at >= now() - interval '1 day')
"""


@dataclass(slots=True)
class ServiceFigures:
    lookback_s: float
    messages: int = 0
    """Telemetry messages committed in the last ``lookback_s``."""
    values: int = 0
    lag_p50_s: float | None = None
    lag_p99_s: float | None = None
    batches: int = 0
    batch_mean: float | None = None
    batch_max: int | None = None
    messages_total: int = 0
    since_last_commit_s: float | None = None
    dead_letters: dict[str, int] = field(default_factory=dict)
    episodes_opened: dict[str, int] = field(default_factory=dict)
    episodes_open: dict[str, int] = field(default_factory=dict)
    gateways: dict[str, int] = field(default_factory=dict)


async def _pairs(conn: psycopg.AsyncConnection[Any], query: str) -> dict[str, int]:
    cur = await conn.execute(query)
    return {str(k): int(v) for k, v in await cur.fetchall()}


async def service_figures(
    conn: psycopg.AsyncConnection[Any], *, lookback_s: float = 60.0
) -> ServiceFigures:
    """The figures now; rates over the last ``lookback_s`` seconds."""
    cur = await conn.execute(_RECENT, {"lookback": lookback_s})
    row = await cur.fetchone()
    assert row is not None
    f = ServiceFigures(lookback_s, int(row[0]), int(row[1]), row[2], row[3], int(row[4]))
    f.batch_mean = float(row[5]) if row[5] is not None else None
    f.batch_max = int(row[6]) if row[6] is not None else None
    f.messages_total = int(row[7])
    f.since_last_commit_s = float(row[8]) if row[8] is not None else None
    f.dead_letters = await _pairs(conn, "SELECT reason, count(*) FROM dead_letters GROUP BY 1")
    f.episodes_opened = await _pairs(conn, "SELECT detector, count(*) FROM episodes GROUP BY 1")
    f.episodes_open = await _pairs(
        conn, "SELECT detector, count(*) FROM episodes WHERE ended_at IS NULL GROUP BY 1"
    )
    f.gateways = await _pairs(conn, "SELECT status, count(*) FROM gateways GROUP BY 1")
    return f
