"""The map's data: every placed device with its kind, gateway and state, as JSON arrays.

PostgreSQL builds the JSON text itself (one row, parallel arrays): for 300,000 devices
that is a few megabytes made in one pass, where fetching 300,000 rows into Python and
encoding them there costs several times more.
"""

from __future__ import annotations

from typing import Any

import psycopg

STATES = ("ok", "low", "medium", "high", "offline", "decommissioned")
"""A device's state on the map, by code: the severity of its worst open anomaly (one
neither ended nor resolved), else offline when its gateway is, else ok; decommissioned
(``attributes.state``) above all."""

_MAP = """
WITH k AS (  -- the catalog's kinds (a few rows), not a scan of every device
    SELECT coalesce(array_agg(DISTINCT kind ORDER BY kind), '{}') AS kinds FROM metrics
), gw AS (
    SELECT id, gateway_id, status, (row_number() OVER (ORDER BY id) - 1)::int AS ix
    FROM gateways
), sev AS (
    SELECT device, max(CASE severity WHEN 'high' THEN 3 WHEN 'medium' THEN 2 ELSE 1 END) AS s
    FROM episodes
    WHERE ended_at IS NULL AND resolved_at IS NULL AND device IS NOT NULL
    GROUP BY device
), placed AS (
    -- float arithmetic, not numeric: rounded to 1e-5 degrees (about a metre), which
    -- float8's shortest output prints in a few digits
    SELECT d.device_id, round(d.longitude * 1e5) / 1e5 AS lon, round(d.latitude * 1e5) / 1e5 AS lat,
           coalesce(array_position(k.kinds, d.kind), 0) - 1 AS kind,
           coalesce(gw.ix, -1) AS gateway,
           CASE WHEN d.attributes->>'state' = 'decommissioned' THEN 5
                WHEN sev.s IS NOT NULL THEN sev.s
                WHEN gw.status = 'offline' THEN 4 ELSE 0 END AS state
    FROM devices d CROSS JOIN k
    LEFT JOIN gw ON gw.id = d.gateway
    LEFT JOIN sev ON sev.device = d.id
    WHERE d.longitude IS NOT NULL AND d.latitude IS NOT NULL
      AND (%(kind)s::text IS NULL OR d.kind = %(kind)s)
      AND (%(gateway)s::text IS NULL OR gw.gateway_id = %(gateway)s)
), chosen AS (
    SELECT * FROM placed WHERE %(state)s::int IS NULL OR state = %(state)s
)
SELECT json_build_object(
    'count', count(*),
    'kinds', (SELECT to_json(kinds) FROM k),
    'gateways', (SELECT coalesce(json_agg(gateway_id ORDER BY ix), '[]') FROM gw),
    'states', to_json(%(states)s::text[]),
    'device_id', coalesce(json_agg(device_id) FILTER (WHERE %(ids)s), '[]'),
    'lon', coalesce(json_agg(lon), '[]'),
    'lat', coalesce(json_agg(lat), '[]'),
    'kind', coalesce(json_agg(kind), '[]'),
    'gateway', coalesce(json_agg(gateway), '[]'),
    'state', coalesce(json_agg(state), '[]')
)::text
FROM chosen
"""


async def map_json(
    conn: psycopg.AsyncConnection[Any],
    *,
    kind: str | None = None,
    gateway: str | None = None,
    state: str | None = None,
    ids: bool = False,
) -> str:
    """The map's JSON document (see ``api.models.MapData``) for the devices matching;
    ``device_id`` is empty unless ``ids`` (a third of the document's size)."""
    code = STATES.index(state) if state is not None else None
    # the arrays are parallel: every json_agg of one aggregate pass sees the rows in the
    # same order (no ORDER BY needed, and none paid for)
    async with conn.transaction():
        # enough memory for the joins' hash tables of a whole city (no spill to disk)
        await conn.execute("SET LOCAL work_mem = '64MB'")
        cur = await conn.execute(
            _MAP,
            {"kind": kind, "gateway": gateway, "state": code, "states": list(STATES), "ids": ids},
        )
        row = await cur.fetchone()
    assert row is not None
    return str(row[0])
