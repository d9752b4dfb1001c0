"""Devices: filters, keyset pages, one device, latest values."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

from api.deps import Limits
from tests.api.conftest import City, api_client
from tests.helpers import query


async def _ids(client: httpx.AsyncClient, **params: Any) -> list[str]:
    r = await client.get("/v1/devices", params=params)
    assert r.status_code == 200, r.text
    return [d["device_id"] for d in r.json()["items"]]


async def test_the_list_holds_every_device_in_id_order(
    reader: httpx.AsyncClient, city: City
) -> None:
    rows = await query(city.url, "SELECT device_id FROM devices ORDER BY device_id")
    assert await _ids(reader) == [r[0] for r in rows] == ["env-1", "sl-1", "sl-2", "sl-x", "tr-1"]


async def test_filters(reader: httpx.AsyncClient) -> None:
    assert await _ids(reader, kind="streetlight") == ["sl-1", "sl-2"]
    assert await _ids(reader, gateway="gw-s") == ["env-1", "tr-1"]
    assert await _ids(reader, status="offline") == ["env-1", "tr-1"]  # gw-s went offline
    assert await _ids(reader, status="online") == ["sl-1", "sl-2", "sl-x"]
    assert await _ids(reader, bbox="-87.66,41.75,-87.59,41.95") == ["sl-1", "sl-2"]
    assert await _ids(reader, q="L-") == ["sl-1", "sl-2", "sl-x"]  # case-insensitive
    assert await _ids(reader, q="%") == []  # a literal, not a wildcard
    assert await _ids(reader, kind="traffic", gateway="gw-n") == []


async def test_pages_walk_the_whole_list_once(reader: httpx.AsyncClient) -> None:
    everything = await _ids(reader)
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await reader.get("/v1/devices", params=params)).json()
        seen += [d["device_id"] for d in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == everything


async def test_bad_filters_and_cursors_are_422(reader: httpx.AsyncClient) -> None:
    for params in (
        {"cursor": "not a cursor!"},
        {"cursor": "WzEsMl0"},  # a valid cursor of another list
        {"bbox": "1,2,3"},
        {"bbox": "10,0,5,1"},
        {"kind": "lamppost"},
        {"limit": 0},
    ):
        r = await reader.get("/v1/devices", params=params)
        assert r.status_code == 422, params
        assert r.json()["type"] == "/problems/validation"


async def test_one_device_has_its_metrics_and_last_seen(
    reader: httpx.AsyncClient, city: City
) -> None:
    r = await reader.get("/v1/devices/env-1")
    assert r.status_code == 200
    body = r.json()
    rows = await query(
        city.url,
        "SELECT DISTINCT ON (m.name) m.name, r.time, r.value FROM metric_values r"
        " JOIN metrics m ON m.id = r.metric JOIN devices d ON d.id = r.device"
        " WHERE d.device_id = 'env-1' ORDER BY m.name, r.time DESC",
    )
    assert [
        (m["name"], datetime.fromisoformat(m["last_seen"]), m["last_value"])
        for m in body["metrics"]
    ] == rows
    assert datetime.fromisoformat(body["last_seen"]) == max(r[1] for r in rows)
    assert body["kind"] == "environment" and body["gateway"] == "gw-s"
    missing = await reader.get("/v1/devices/nope")
    assert missing.status_code == 404 and missing.json()["type"] == "/problems/not-found"


async def test_latest_of_one_and_of_many_devices(reader: httpx.AsyncClient, city: City) -> None:
    one = (await reader.get("/v1/devices/sl-2/latest")).json()["items"]
    assert {i["metric"] for i in one} == {"power_w", "dim_pct", "voltage_v"}
    many = (await reader.get("/v1/latest", params={"device": ["sl-2", "tr-1", "nope"]})).json()
    assert {(i["device_id"], i["metric"]) for i in many["items"]} == {
        ("sl-2", "power_w"),
        ("sl-2", "dim_pct"),
        ("sl-2", "voltage_v"),
        ("tr-1", "speed_kmh"),
        ("tr-1", "occupancy_pct"),
    }
    newest = await query(
        city.url,
        "SELECT max(time) FROM metric_values r JOIN devices d ON d.id = r.device"
        " WHERE d.device_id = 'tr-1'",
    )
    assert all(
        datetime.fromisoformat(i["time"]) == newest[0][0]
        for i in many["items"]
        if i["device_id"] == "tr-1"
    )
    by_kind = (await reader.get("/v1/latest", params={"kind": "traffic"})).json()["items"]
    assert {i["device_id"] for i in by_kind} == {"tr-1"}
    unannounced = (await reader.get("/v1/devices/sl-x/latest")).json()["items"]
    assert [i["metric"] for i in unannounced] == ["power_w"]
    assert (await reader.get("/v1/devices/nope/latest")).status_code == 404


async def test_too_many_latest_values_is_400_saying_how_to_narrow(
    city: City, keys: dict[str, str]
) -> None:
    async with api_client(city.url, keys["reader"], limits=Limits(max_points=3)) as client:
        r = await client.get("/v1/latest")
        assert r.status_code == 400
        body = r.json()
        assert body["type"] == "/problems/too-many-points" and body["max_points"] == 3
        assert "name fewer devices" in body["detail"]
        assert (await client.get("/v1/latest", params={"device": "tr-1"})).status_code == 200
