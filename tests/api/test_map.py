"""The map's data: every placed device with its kind, gateway and state codes."""

from __future__ import annotations

import httpx

from tests.api.conftest import City
from tests.helpers import query


async def test_the_map_data(reader: httpx.AsyncClient, city: City) -> None:
    r = await reader.get("/v1/map")
    assert r.status_code == 200
    m = r.json()
    rows = await query(
        city.url,
        "SELECT device_id, longitude, latitude FROM devices WHERE latitude IS NOT NULL ORDER BY id",
    )
    assert m["count"] == len(rows) == 4
    assert list(zip(m["device_id"], m["lon"], m["lat"], strict=True)) == [
        (d, round(x, 6), round(y, 6)) for d, x, y in rows
    ]
    state = dict(zip(m["device_id"], (m["states"][s] for s in m["state"]), strict=True))
    # sl-1's lamp is out (open, high); gw-s is offline; sl-2's surge episode has ended
    assert state == {"sl-1": "high", "sl-2": "ok", "env-1": "offline", "tr-1": "offline"}
    kinds = [m["kinds"][k] for k in m["kind"]]
    assert kinds == ["streetlight", "streetlight", "environment", "traffic"]
    assert [m["gateways"][g] for g in m["gateway"]] == ["gw-n", "gw-n", "gw-s", "gw-s"]
    only = (await reader.get("/v1/map", params={"state": "offline", "kind": "traffic"})).json()
    assert only["device_id"] == ["tr-1"]
    assert (await reader.get("/v1/map", params={"state": "fine"})).status_code == 422
