"""Writing windowed aggregates: partial states merged into ``rollups`` by upsert."""

from __future__ import annotations

import psycopg
from psycopg.rows import TupleRow

from devices.columns import Partials
from devices.tables import METRIC_SLOTS
from storage.database import map_errors

_UPSERT = """
INSERT INTO rollups AS r (device, metric, width_s, window_start, count, sum, mean, m2,
                          min, max, first_time, first, last_time, last, late)
SELECT p.device, p.metric, %s, 'epoch'::timestamptz + p.w * INTERVAL '1 microsecond',
       p.count, p.sum, p.mean, p.m2, p.min, p.max,
       'epoch'::timestamptz + p.ft * INTERVAL '1 microsecond', p.fv,
       'epoch'::timestamptz + p.lt * INTERVAL '1 microsecond', p.lv, p.late
FROM unnest(%s::int4[], %s::int2[], %s::int8[], %s::int4[], %s::float8[], %s::float8[],
            %s::float8[], %s::float8[], %s::float8[], %s::int8[], %s::float8[], %s::int8[],
            %s::float8[], %s::int4[])
     AS p (device, metric, w, count, sum, mean, m2, min, max, ft, fv, lt, lv, late)
ORDER BY 1, 2, 4
ON CONFLICT (device, metric, width_s, window_start) DO UPDATE SET
    count = r.count + excluded.count,
    sum = r.sum + excluded.sum,
    mean = (r.sum + excluded.sum) / (r.count + excluded.count),
    m2 = r.m2 + excluded.m2 + (excluded.mean - r.mean) ^ 2 * r.count * excluded.count
         / (r.count + excluded.count),
    min = least(r.min, excluded.min),
    max = greatest(r.max, excluded.max),
    first = CASE WHEN excluded.first_time < r.first_time THEN excluded.first ELSE r.first END,
    first_time = least(r.first_time, excluded.first_time),
    last = CASE WHEN excluded.last_time >= r.last_time THEN excluded.last ELSE r.last END,
    last_time = greatest(r.last_time, excluded.last_time),
    late = r.late + excluded.late,
    revision = r.revision + 1
"""


async def upsert_partials(
    conn: psycopg.AsyncConnection[TupleRow], width_s: int, p: Partials
) -> None:
    """Merge partials (one per series and window, times in Unix µs) into ``rollups``."""
    if not len(p):
        return
    device = p.series // METRIC_SLOTS
    metric = p.series % METRIC_SLOTS
    with map_errors():
        await conn.execute(
            _UPSERT,
            (
                width_s,
                device.tolist(),
                metric.tolist(),
                p.window.tolist(),
                p.count.tolist(),
                p.sum.tolist(),
                p.mean.tolist(),
                p.m2.tolist(),
                p.min.tolist(),
                p.max.tolist(),
                p.first_time.tolist(),
                p.first.tolist(),
                p.last_time.tolist(),
                p.last.tolist(),
                p.late.tolist(),
            ),
        )
