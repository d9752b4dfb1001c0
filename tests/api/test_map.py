"""The map's data: every placed device with its kind, gateway and state codes."""

from __future__ import annotations

import httpx

from tests.api.conftest import City
from tests.helpers import query


async def test_the_map_data(reader: httpx.AsyncClient, city: City) -> None:
    r = await reader.get("/v1/map", params={"ids": "true"})
    assert r.status_code == 200
    m = r.json()
    rows = await query(
        city.url,
        "SELECT device_id, longitude, latitude FROM devices WHERE latitude IS NOT NULL ORDER BY id",
    )
    assert m["count"] == len(rows) == 4
    at = {d: (x, y) for d, x, y in rows}
    assert sorted(m["device_id"]) == sorted(at)  # in one order for every array, any order
    for d, lon, lat in zip(m["device_id"], m["lon"], m["lat"], strict=True):
        assert abs(lon - at[d][0]) <= 0.6e-5 and abs(lat - at[d][1]) <= 0.6e-5  # about a metre
    state = dict(zip(m["device_id"], (m["states"][s] for s in m["state"]), strict=True))
    # sl-1's lamp is out (open, high); gw-s is offline; sl-2's surge episode has ended
    assert state == {"sl-1": "high", "sl-2": "ok", "env-1": "offline", "tr-1": "offline"}
    kinds = dict(zip(m["device_id"], (m["kinds"][k] for k in m["kind"]), strict=True))
    assert kinds == {"sl-1": "streetlight", "sl-2": "streetlight", "env-1": "environment",
                     "tr-1": "traffic"}  # fmt: skip
    gateways = {m["gateways"][g] for g, d in zip(m["gateway"], m["device_id"], strict=True)
                if d.startswith("sl-")}  # fmt: skip
    assert gateways == {"gw-n"}
    params = {"state": "offline", "kind": "traffic", "ids": "true"}
    only = (await reader.get("/v1/map", params=params)).json()
    assert only["device_id"] == ["tr-1"]
    without = (await reader.get("/v1/map")).json()
    assert without["device_id"] == [] and without["count"] == 4
    assert sorted(without["lon"]) == sorted(m["lon"])
    assert (await reader.get("/v1/map", params={"state": "fine"})).status_code == 422
