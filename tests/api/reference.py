"""Plain-Python answers computed from raw rows, to check the API's against."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np

from tests.helpers import query

WIDTHS = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600}


async def raw_rows(
    url: str, device: str, metric: str, start: datetime, end: datetime
) -> list[tuple[datetime, float]]:
    rows = await query(
        url,
        "SELECT r.time, r.value FROM metric_values r JOIN devices d ON d.id = r.device"
        " JOIN metrics m ON m.id = r.metric WHERE d.device_id = %s AND m.name = %s"
        " AND r.time >= %s AND r.time < %s ORDER BY r.time",
        (device, metric, start, end),
    )
    return [(t, v) for t, v in rows]


def bucket_start(t: datetime, bucket: str, tz: str) -> datetime:
    if bucket == "1d":
        local = t.astimezone(ZoneInfo(tz))
        return datetime(local.year, local.month, local.day, tzinfo=ZoneInfo(tz))
    w = WIDTHS[bucket]
    return datetime.fromtimestamp(int(t.timestamp()) // w * w, UTC)


def aggregate(values: list[float], agg: str) -> float:
    match agg:
        case "avg":
            return sum(values) / len(values)
        case "min":
            return min(values)
        case "max":
            return max(values)
        case "sum":
            return sum(values)
        case "count":
            return float(len(values))
        case "first":
            return values[0]
        case "last":
            return values[-1]
        case "p95":
            return float(np.percentile(values, 95))
    raise ValueError(agg)


def buckets(
    rows: list[tuple[datetime, float]], bucket: str, agg: str, tz: str = "America/Chicago"
) -> list[tuple[datetime, float]]:
    """(bucket start, aggregate) in time order; rows must be in time order."""
    grouped: dict[datetime, list[float]] = defaultdict(list)
    for t, v in rows:
        grouped[bucket_start(t, bucket, tz)].append(v)
    return [(b, aggregate(vs, agg)) for b, vs in sorted(grouped.items())]
