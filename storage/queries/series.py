"""Series (one device x metric) over a time range: raw values, or aggregated in buckets.

Bucketed answers come from the ``rollups`` the ingester writes where they cover the
request, and from raw ``readings`` elsewhere, in one query. For each series the rollups
of width ``w`` cover ``[r0, e)``: ``r0`` is the request's start rounded up to ``w``, ``e``
the end of the series' newest rollup window (capped at the request's end rounded down).
Raw values fill ``[start, r0)`` and ``[e, end)``. Both parts are brought to the same
partial form (count, sum, min, max, first, last) and merged per bucket.

Buckets below a day start on multiples of their width from the Unix epoch (as
TimescaleDB's ``time_bucket``); day buckets start at local midnight in the requested
time zone (``date_trunc('day', t, tz)``), so a 23- or 25-hour day is one bucket.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql

BUCKETS: dict[str, int] = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "1d": 86400}
"""Bucket names and their (nominal) widths in seconds."""

# The rollup width each bucket is built from (a bucket is a whole number of windows).
_ROLLUP_FOR = {60: 60, 300: 60, 900: 900, 3600: 3600}

_MERGE = {
    "avg": "sum(sum) / sum(count)",
    "min": "min(min)",
    "max": "max(max)",
    "sum": "sum(sum)",
    "count": "sum(count)::float8",
    "first": "(array_agg(first ORDER BY first_time))[1]",
    "last": "(array_agg(last ORDER BY last_time DESC))[1]",
}
_RAW = {
    "avg": "avg(v.value)",
    "min": "min(v.value)",
    "max": "max(v.value)",
    "sum": "sum(v.value)",
    "count": "count(*)::float8",
    "first": "(array_agg(v.value ORDER BY v.time))[1]",
    "last": "(array_agg(v.value ORDER BY v.time DESC))[1]",
    "p95": "percentile_cont(0.95) WITHIN GROUP (ORDER BY v.value)",
}
AGGS: tuple[str, ...] = tuple(_RAW)


@dataclass(frozen=True, slots=True)
class SeriesKey:
    device: int
    metric: int
    device_id: str
    metric_name: str
    unit: str


@dataclass(frozen=True, slots=True)
class SeriesRequest:
    start: datetime
    end: datetime
    bucket: str
    agg: str = "avg"
    tz: str = "UTC"
    """IANA zone of day buckets; the API passes the request's or the configured one."""
    use_rollups: bool = True
    """False answers from raw readings only (the benchmark's baseline)."""


@dataclass(slots=True)
class Series:
    key: SeriesKey
    source: str
    """``rollups``, ``raw`` or ``rollups+raw``: where the answer came from."""
    points: list[tuple[datetime, float]] = field(default_factory=list)


async def resolve_series(
    conn: psycopg.AsyncConnection[Any], device_ids: list[str], metrics: list[str]
) -> list[SeriesKey]:
    """The known series among devices x metrics, in the order asked; unknown names drop out."""
    cur = await conn.execute(
        "SELECT d.id, m.id, d.device_id, m.name, m.unit"
        " FROM unnest(%s::text[]) WITH ORDINALITY AS a(device_id, i)"
        " JOIN devices d USING (device_id)"
        " CROSS JOIN unnest(%s::text[]) WITH ORDINALITY AS b(name, j)"
        " JOIN metrics m USING (name) ORDER BY a.i, b.j",
        (device_ids, metrics),
    )
    return [SeriesKey(*row) for row in await cur.fetchall()]


async def raw(
    conn: psycopg.AsyncConnection[Any],
    keys: list[SeriesKey],
    start: datetime,
    end: datetime,
    *,
    limit: int,
) -> list[Series] | None:
    """Raw values in ``[start, end)``; None when there are more than ``limit``."""
    cur = await conn.execute(
        "SELECT v.device, v.metric, v.time, v.value"
        " FROM unnest(%s::int4[], %s::int2[]) AS s(device, metric)"
        " JOIN metric_values v ON v.device = s.device AND v.metric = s.metric"
        " AND v.time >= %s AND v.time < %s ORDER BY v.device, v.metric, v.time LIMIT %s",
        ([k.device for k in keys], [k.metric for k in keys], start, end, limit + 1),
    )
    rows = await cur.fetchall()
    if len(rows) > limit:
        return None
    out = {(k.device, k.metric): Series(k, "raw") for k in keys}
    for device, metric, time, value in rows:
        out[device, metric].points.append((time, value))
    return list(out.values())


def estimate_points(n_series: int, req: SeriesRequest) -> int:
    """An upper bound of the points a bucketed request returns (asked before querying)."""
    if req.bucket == "1d":
        zone = ZoneInfo(req.tz)
        days = (req.end.astimezone(zone).date() - req.start.astimezone(zone).date()).days + 1
        return n_series * days
    width = BUCKETS[req.bucket]
    return n_series * (math.ceil((req.end - req.start).total_seconds() / width) + 1)


def _rollup_width(req: SeriesRequest) -> int | None:
    """The rollup width to build the buckets from, or None: raw values only."""
    if not req.use_rollups or req.agg == "p95":
        return None
    width = BUCKETS[req.bucket]
    if width < 86400:
        return _ROLLUP_FOR[width]
    # A local day is whole rollup windows when the zone's UTC offset is a multiple of the
    # window all through the range (whole hours in most zones; 15 min covers the others).
    # Only where values can be: from 1970 to tomorrow (a far range would loop for long).
    zone, offsets = ZoneInfo(req.tz), set()
    t = max(req.start, datetime(1970, 1, 1, tzinfo=UTC))
    last = min(req.end, datetime.now(UTC)) + timedelta(days=1)
    while t <= last:
        offset = t.astimezone(zone).utcoffset()
        offsets.add(int(offset.total_seconds()) if offset else 0)
        t += timedelta(hours=12)
    for w in (3600, 900):
        if all(o % w == 0 for o in offsets):
            return w
    return None


def _ceil(t: datetime, w: int) -> datetime:
    s = math.ceil(t.timestamp() / w) * w
    return datetime.fromtimestamp(s, UTC)


def _floor(t: datetime, w: int) -> datetime:
    s = math.floor(t.timestamp() / w) * w
    return datetime.fromtimestamp(s, UTC)


_HORIZONS = """
SELECT s.device, s.metric, h.window_start
FROM unnest(%s::int4[], %s::int2[]) AS s(device, metric)
LEFT JOIN LATERAL (
    SELECT r.window_start FROM rollups r
    WHERE r.device = s.device AND r.metric = s.metric AND r.width_s = %s
    ORDER BY r.window_start DESC LIMIT 1
) h ON true
"""


async def _coverage(
    conn: psycopg.AsyncConnection[Any], keys: list[SeriesKey], req: SeriesRequest, w: int
) -> tuple[datetime, dict[tuple[int, int], datetime]]:
    """``r0`` and, per series, ``e``: rollups of width ``w`` answer ``[r0, e)``."""
    r0, r1 = _ceil(req.start, w), _floor(req.end, w)
    if r1 <= r0:
        return req.start, {(k.device, k.metric): req.start for k in keys}
    cur = await conn.execute(_HORIZONS, ([k.device for k in keys], [k.metric for k in keys], w))
    ends = {}
    for device, metric, newest in await cur.fetchall():
        horizon = newest + timedelta(seconds=w) if newest is not None else r0
        ends[device, metric] = max(r0, min(r1, horizon))
    return r0, ends


def _bucket_sql(req: SeriesRequest, column: str) -> sql.Composed:
    if req.bucket == "1d":
        return sql.SQL("date_trunc('day', {}, %(tz)s)").format(sql.Identifier(column))
    return sql.SQL("date_bin(%(step)s::interval, {}, timestamptz '1970-01-01 00:00:00+00')").format(
        sql.Identifier(column)
    )


def _merged_query(req: SeriesRequest) -> sql.Composed:
    """Rollups over [r0, e) and raw values elsewhere, merged per bucket."""
    return sql.SQL(
        """
WITH s AS (
    SELECT * FROM unnest(%(devices)s::int4[], %(metrics)s::int2[], %(ends)s::timestamptz[])
        AS s(device, metric, e)
), parts AS (
    SELECT r.device, r.metric, {rb} AS b, r.count, r.sum, r.min, r.max,
           r.first_time, r.first, r.last_time, r.last
    FROM s JOIN rollups r ON r.device = s.device AND r.metric = s.metric
        AND r.width_s = %(w)s AND r.window_start >= %(r0)s AND r.window_start < s.e
    UNION ALL  -- two ranges, two branches: each an index range scan
    SELECT v.device, v.metric, {vb}, 1, v.value, v.value, v.value, v.time, v.value, v.time, v.value
    FROM s JOIN metric_values v ON v.device = s.device AND v.metric = s.metric
        AND v.time >= %(start)s AND v.time < %(r0)s
    UNION ALL
    SELECT v.device, v.metric, {vb}, 1, v.value, v.value, v.value, v.time, v.value, v.time, v.value
    FROM s JOIN metric_values v ON v.device = s.device AND v.metric = s.metric
        AND v.time >= s.e AND v.time < %(end)s
)
SELECT device, metric, b, {agg} FROM parts GROUP BY device, metric, b ORDER BY device, metric, b
"""
    ).format(
        rb=_bucket_sql(req, "window_start"),
        vb=_bucket_sql(req, "time"),
        agg=sql.SQL(_MERGE[req.agg]),
    )


def _raw_query(req: SeriesRequest) -> sql.Composed:
    return sql.SQL(
        """
SELECT v.device, v.metric, {vb} AS b, {agg}
FROM unnest(%(devices)s::int4[], %(metrics)s::int2[]) AS s(device, metric)
JOIN metric_values v ON v.device = s.device AND v.metric = s.metric
    AND v.time >= %(start)s AND v.time < %(end)s
GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
"""
    ).format(vb=_bucket_sql(req, "time"), agg=sql.SQL(_RAW[req.agg]))


async def _plan(
    conn: psycopg.AsyncConnection[Any], keys: list[SeriesKey], req: SeriesRequest
) -> tuple[sql.Composed, dict[str, Any], dict[tuple[int, int], str]]:
    """The query, its parameters and each series' source."""
    params: dict[str, Any] = {
        "devices": [k.device for k in keys],
        "metrics": [k.metric for k in keys],
        "start": req.start,
        "end": req.end,
        "tz": req.tz,
        "step": timedelta(seconds=BUCKETS[req.bucket]),
    }
    w = _rollup_width(req)
    if w is None:
        return _raw_query(req), params, {(k.device, k.metric): "raw" for k in keys}
    r0, ends = await _coverage(conn, keys, req, w)
    params |= {"w": w, "r0": r0, "ends": [ends[k.device, k.metric] for k in keys]}
    sources = {}
    for s, e in ends.items():
        parts = (["rollups"] if e > r0 else []) + (["raw"] if r0 > req.start or e < req.end else [])
        sources[s] = "+".join(parts) or "rollups"
    return _merged_query(req), params, sources


async def bucketed(
    conn: psycopg.AsyncConnection[Any], keys: list[SeriesKey], req: SeriesRequest
) -> list[Series]:
    """Each series aggregated with ``req.agg`` in buckets of ``req.bucket``."""
    query, params, sources = await _plan(conn, keys, req)
    out = {(k.device, k.metric): Series(k, sources[k.device, k.metric]) for k in keys}
    cur = await conn.execute(query, params)
    for device, metric, bucket, value in await cur.fetchall():
        if value is not None:
            out[device, metric].points.append((bucket, value))
    return list(out.values())


async def stream_bucketed(
    conn: psycopg.AsyncConnection[Any],
    keys: list[SeriesKey],
    req: SeriesRequest,
    *,
    chunk: int = 2000,
) -> AsyncIterator[list[tuple[SeriesKey, datetime, float]]]:
    """Like ``bucketed``, in chunks of points through a server-side cursor."""
    query, params, _ = await _plan(conn, keys, req)
    by_id = {(k.device, k.metric): k for k in keys}
    async with conn.transaction(), conn.cursor("series_export") as cur:
        await cur.execute(query, params)
        while rows := await cur.fetchmany(chunk):
            yield [(by_id[d, m], b, v) for d, m, b, v in rows if v is not None]
