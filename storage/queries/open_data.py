"""Open data: a public metric aggregated per grid cell and bucket, never per device.

A device's coordinates are rounded to its kind's grid (``grid_deg`` in the catalog);
devices in the same cell are merged, and no device id leaves. Per cell and bucket the
query gives the devices that reported, the values counted, their mean, their total and,
for cumulative counters, the summed increase of the devices: a device's last value in the
bucket minus its last value in the bucket before (none there: no increase; a counter
that went back, a reset, is left out of that bucket). Which of these leaves, and the
suppression of small counts, is the API's policy (``api.routes.open_data``); this module
only aggregates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg


@dataclass(frozen=True, slots=True)
class OpenSeriesRequest:
    metric: int
    kind: str
    grid_deg: float
    start: datetime
    end: datetime
    """Both on bucket boundaries: only whole buckets are aggregated."""
    since: datetime
    """The start of the bucket before ``start``: a counter's increase in the first bucket
    is from the device's last value there."""
    width_s: int | None
    """Bucket width; None: local days in ``tz``."""
    tz: str


@dataclass(frozen=True, slots=True)
class Cell:
    """One grid cell in one bucket."""

    time: datetime
    latitude: float
    longitude: float
    devices: int
    samples: int
    mean: float
    total: float
    increase: float | None


_SERIES = """
WITH v AS (
    -- per device of the kind, its values of the metric: index range scans on
    -- readings (device, metric, time), never a pass over every metric's values
    SELECT d.id AS device, r.time, r.value, {bucket} AS bucket,
           (round((d.latitude / %(g)s)::numeric) * %(g)s::numeric)::float8 AS lat,
           (round((d.longitude / %(g)s)::numeric) * %(g)s::numeric)::float8 AS lon
    FROM devices d
    CROSS JOIN LATERAL (
        SELECT time, value FROM metric_values
        WHERE device = d.id AND metric = %(metric)s AND time >= %(since)s AND time < %(end)s
    ) r
    WHERE d.kind = %(kind)s AND d.latitude IS NOT NULL AND d.longitude IS NOT NULL
), per_device AS (
    SELECT bucket, lat, lon, device, count(*) AS n, sum(value) AS s,
           (array_agg(value ORDER BY time DESC))[1] AS last
    FROM v GROUP BY bucket, lat, lon, device
), stepped AS (
    SELECT *, last - lag(last) OVER (PARTITION BY device ORDER BY bucket) AS up
    FROM per_device
)
SELECT bucket, lat, lon, count(*)::int, sum(n)::int, sum(s) / sum(n), sum(s),
       sum(up) FILTER (WHERE up >= 0)
FROM stepped WHERE bucket >= %(start)s
GROUP BY bucket, lat, lon ORDER BY bucket, lat, lon LIMIT %(limit)s
"""
_SUB_DAY = "date_bin(make_interval(secs => %(width)s), r.time, '1970-01-01 00:00:00+00')"
_DAY = "date_trunc('day', r.time, %(tz)s)"


async def open_series(
    conn: psycopg.AsyncConnection[Any], req: OpenSeriesRequest, *, limit: int
) -> list[Cell] | None:
    """The cells of one public metric over ``[start, end)``, in time, then cell order;
    None when there are more than ``limit``."""
    sql = _SERIES.format(bucket=_DAY if req.width_s is None else _SUB_DAY)
    params = {
        "metric": req.metric, "kind": req.kind, "g": req.grid_deg, "start": req.start,
        "since": req.since, "end": req.end, "width": req.width_s, "tz": req.tz,
        "limit": limit + 1,
    }  # fmt: skip
    async with conn.cursor() as cur:
        await cur.execute(sql.encode(), params)
        rows = await cur.fetchall()
    if len(rows) > limit:
        return None
    return [Cell(*_tuple(row)) for row in rows]


def _tuple(row: Any) -> tuple[Any, ...]:
    return tuple(row.values()) if isinstance(row, dict) else tuple(row)


async def open_cells(
    conn: psycopg.AsyncConnection[Any], grids: dict[str, float]
) -> list[tuple[str, float, float, int]]:
    """Devices per kind and grid cell: (kind, latitude, longitude, devices), no device id."""
    cur = await conn.execute(
        "SELECT d.kind,"
        " (round((d.latitude / g.step)::numeric) * g.step::numeric)::float8 AS lat,"
        " (round((d.longitude / g.step)::numeric) * g.step::numeric)::float8 AS lon,"
        " count(*)::int"
        " FROM devices d JOIN unnest(%s::text[], %s::float8[]) AS g(kind, step)"
        " ON g.kind = d.kind"
        " WHERE d.latitude IS NOT NULL AND d.longitude IS NOT NULL"
        " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        (list(grids), list(grids.values())),
    )
    return [
        (str(k), float(a), float(b), int(n)) for k, a, b, n in map(_tuple, await cur.fetchall())
    ]
