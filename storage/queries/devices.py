"""Devices: the filtered list (keyset pages), one device, and latest values."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row


@dataclass(frozen=True, slots=True)
class DeviceFilter:
    """Filters of the device list; None matches everything."""

    kind: str | None = None
    gateway: str | None = None
    status: str | None = None
    """The device's gateway status: ``online``, ``offline`` or ``unknown``."""
    bbox: tuple[float, float, float, float] | None = None
    """min longitude, min latitude, max longitude, max latitude (GeoJSON order)."""
    q: str | None = None
    """A substring of the device id, case-insensitive."""

    def params(self) -> dict[str, Any]:
        bbox = self.bbox or (None, None, None, None)
        q = None
        if self.q is not None:  # a literal substring: LIKE's own wildcards escaped
            q = "%" + self.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        return {
            "kind": self.kind,
            "gateway": self.gateway,
            "status": self.status,
            "x0": bbox[0],
            "y0": bbox[1],
            "x1": bbox[2],
            "y1": bbox[3],
            "q": q,
        }


_COLUMNS = """
SELECT d.device_id, d.kind, g.gateway_id AS gateway, coalesce(g.status, 'unknown') AS status,
       d.latitude, d.longitude, d.announced, d.attributes
FROM devices d LEFT JOIN gateways g ON g.id = d.gateway
"""

_FILTER = """
WHERE (%(kind)s::text IS NULL OR d.kind = %(kind)s)
  AND (%(gateway)s::text IS NULL OR g.gateway_id = %(gateway)s)
  AND (%(status)s::text IS NULL OR coalesce(g.status, 'unknown') = %(status)s)
  AND (%(x0)s::float8 IS NULL OR (d.longitude BETWEEN %(x0)s AND %(x1)s
                                  AND d.latitude BETWEEN %(y0)s AND %(y1)s))
  AND (%(q)s::text IS NULL OR d.device_id ILIKE %(q)s)
"""

_LIST = (
    _COLUMNS
    + _FILTER
    + "  AND (%(after)s::text IS NULL OR d.device_id > %(after)s)"
    + " ORDER BY d.device_id LIMIT %(limit)s"
)


async def list_devices(
    conn: psycopg.AsyncConnection[Any], f: DeviceFilter, *, after: str | None, limit: int
) -> list[dict[str, Any]]:
    """Devices matching ``f`` in device id order, those after ``after``, at most ``limit``."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_LIST, {**f.params(), "after": after, "limit": limit})
        return await cur.fetchall()


async def stream_devices(
    conn: psycopg.AsyncConnection[Any], f: DeviceFilter, *, chunk: int = 1000
) -> AsyncIterator[list[dict[str, Any]]]:
    """Every device matching ``f``, in chunks, through a server-side cursor."""
    async with (
        conn.transaction(),
        conn.cursor("devices_export", row_factory=dict_row) as cur,
    ):
        await cur.execute(_COLUMNS + _FILTER + " ORDER BY d.device_id", f.params())
        while rows := await cur.fetchmany(chunk):
            yield rows


async def device_exists(conn: psycopg.AsyncConnection[Any], device_id: str) -> bool:
    cur = await conn.execute("SELECT 1 FROM devices WHERE device_id = %s", (device_id,))
    return await cur.fetchone() is not None


# Latest value of each metric of each device: one index probe per (device, metric) on
# readings (device, metric, time DESC), over the metrics of the device's kind (all
# metrics for a device not yet announced).
_LATEST = """
SELECT d.device_id, m.name AS metric, m.unit, r.time, r.value
FROM devices d
JOIN metrics m ON d.kind IS NULL OR m.kind = d.kind
CROSS JOIN LATERAL (
    SELECT v.time, v.value FROM metric_values v
    WHERE v.device = d.id AND v.metric = m.id ORDER BY v.time DESC LIMIT 1
) r
WHERE (%(ids)s::text[] IS NULL OR d.device_id = ANY(%(ids)s))
  AND (%(kind)s::text IS NULL OR d.kind = %(kind)s)
  AND (%(gateway)s::text IS NULL
       OR d.gateway = (SELECT id FROM gateways WHERE gateway_id = %(gateway)s))
ORDER BY d.device_id, m.name
LIMIT %(limit)s
"""


async def latest_values(
    conn: psycopg.AsyncConnection[Any],
    *,
    device_ids: list[str] | None,
    kind: str | None = None,
    gateway: str | None = None,
    limit: int,
) -> list[dict[str, Any]]:
    """The latest value of every metric of the matching devices: device_id, metric,
    unit, time, value; at most ``limit`` rows."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            _LATEST, {"ids": device_ids, "kind": kind, "gateway": gateway, "limit": limit}
        )
        return await cur.fetchall()


async def get_device(conn: psycopg.AsyncConnection[Any], device_id: str) -> dict[str, Any] | None:
    """One device with ``metrics``: each metric it has values of, with its last value."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_COLUMNS + " WHERE d.device_id = %(id)s", {"id": device_id})
        device = await cur.fetchone()
        if device is None:
            return None
        await cur.execute(
            _LATEST, {"ids": [device_id], "kind": None, "gateway": None, "limit": 1000}
        )
        metrics = await cur.fetchall()
    device["metrics"] = [
        {"name": m["metric"], "unit": m["unit"], "last_seen": m["time"], "last_value": m["value"]}
        for m in metrics
    ]
    device["last_seen"] = max((m["time"] for m in metrics), default=None)
    return device


async def device_locations(
    conn: psycopg.AsyncConnection[Any], device_ids: list[str]
) -> dict[str, tuple[float | None, float | None]]:
    """(longitude, latitude) of each known device among ``device_ids``."""
    cur = await conn.execute(
        "SELECT device_id, longitude, latitude FROM devices WHERE device_id = ANY(%s)",
        (device_ids,),
    )
    return {d: (x, y) for d, x, y in await cur.fetchall()}
