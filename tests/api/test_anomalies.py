"""Anomalies: the episodes the ingester opened, filtered and paged."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from devices.columns import EpisodeChange
from storage.database import connect
from storage.episodes import write_episodes
from tests.api.conftest import NIGHT, SURGE_AT, City, api_client, new_key
from tests.fix_servers import DatabaseServer
from tests.helpers import query


async def _items(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    r = await client.get("/v1/anomalies", params=params)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def test_every_episode_newest_first(reader: httpx.AsyncClient, city: City) -> None:
    rows = await query(
        city.url,
        "SELECT e.id, d.device_id, e.detector, e.started_at, e.ended_at FROM episodes e"
        " JOIN devices d ON d.id = e.device ORDER BY e.started_at DESC, e.id DESC",
    )
    items = await _items(reader)
    got = [
        (
            a["id"],
            a["device_id"],
            a["detector"],
            datetime.fromisoformat(a["started_at"]),
            a["ended_at"] and datetime.fromisoformat(a["ended_at"]),
        )
        for a in items
    ]
    assert got == rows and len(rows) >= 2


async def test_the_lamp_out_is_the_open_one(reader: httpx.AsyncClient) -> None:
    open_ = await _items(reader, state="open")
    assert [(a["device_id"], a["detector"], a["metric"], a["open"]) for a in open_] == [
        ("sl-1", "lamp_out", None, True)
    ]
    assert datetime.fromisoformat(open_[0]["started_at"]) > NIGHT
    closed = await _items(reader, state="closed")
    assert closed and all(not a["open"] and a["ended_at"] for a in closed)


async def test_filters(reader: httpx.AsyncClient) -> None:
    surge = await _items(reader, device="sl-2", metric="voltage_v", detector="deviation")
    assert len(surge) == 1 and surge[0]["observed"] == 160.0 and surge[0]["kind"] == "streetlight"
    assert datetime.fromisoformat(surge[0]["started_at"]) >= SURGE_AT
    assert {a["device_id"] for a in await _items(reader, kind="streetlight")} == {"sl-1", "sl-2"}
    assert await _items(reader, kind="environment") == []
    assert {a["device_id"] for a in await _items(reader, gateway="gw-n")} == {"sl-1", "sl-2"}
    assert all(a["severity"] == "high" for a in await _items(reader, severity="high"))
    assert await _items(reader, severity="low") == [
        a for a in await _items(reader) if a["severity"] == "low"
    ]
    before_surge = await _items(reader, to=SURGE_AT.isoformat())
    assert before_surge == []
    after_night = await _items(reader, **{"from": NIGHT.isoformat()})
    assert {a["device_id"] for a in after_night} == {"sl-1"}  # the surge's episode ended before


async def test_pages_walk_every_episode_once(reader: httpx.AsyncClient) -> None:
    everything = await _items(reader)
    seen: list[dict[str, Any]] = []
    cursor = None
    for _ in range(len(everything) + 1):
        params: dict[str, Any] = {"limit": 1} | ({"cursor": cursor} if cursor else {})
        page = (await reader.get("/v1/anomalies", params=params)).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == everything


async def test_bad_parameters_are_422(reader: httpx.AsyncClient) -> None:
    for params in (
        {"state": "ajar"},
        {"severity": "dire"},
        {"cursor": "WyJ4Il0"},
        {"from": "2026-01-01"},
    ):
        r = await reader.get("/v1/anomalies", params=params)
        assert r.status_code == 422, params
        assert r.json()["type"] == "/problems/validation"


async def test_a_silent_gateway_is_an_episode_of_the_gateway(city: City) -> None:
    """Written as the ingester writes a gateway's silence, on the spare copy of the city."""
    url = city.spare_url
    ((gw_s,),) = await query(url, "SELECT id FROM gateways WHERE gateway_id = 'gw-s'")
    start_us = int(NIGHT.timestamp() * 1e6)
    silent = EpisodeChange(None, None, "gateway_silent", True, start_us, start_us, 0.9, 0.0, gw_s)
    conn = await connect(url)
    try:
        await write_episodes(conn, [silent])
    finally:
        await conn.close()
    async with api_client(url, await new_key(url, "reader")) as client:
        listed = await _items(client, detector="gateway_silent")
        assert [(a["device_id"], a["gateway"], a["metric"], a["open"]) for a in listed] == [
            (None, "gw-s", None, True)
        ]
        of_gw_s = await _items(client, gateway="gw-s")
        everything = await _items(client)
        assert listed[0] in of_gw_s
        assert of_gw_s == [a for a in everything if a["gateway"] == "gw-s"]
        assert {a["gateway"] for a in everything} == {"gw-n", "gw-s"}


@pytest.fixture
async def copy_url(city: City, pg_server: DatabaseServer) -> AsyncIterator[str]:
    """A copy of the city for a test that changes episodes."""
    name = f"citytel_lifecycle_{uuid.uuid4().hex[:6]}"
    yield pg_server.create(name, template=urlsplit(city.url).path.lstrip("/"))
    pg_server.drop(name)


async def test_acknowledge_then_resolve(copy_url: str) -> None:
    key = await new_key(copy_url, "reader")  # named "test reader"
    async with api_client(copy_url, key) as client:
        (lamp,) = await _items(client, detector="lamp_out")
        assert lamp["lifecycle"] == "open" and lamp["acked_by"] is None
        r = await client.post(f"/v1/anomalies/{lamp['id']}/ack", json={"comment": "crew sent"})
        assert r.status_code == 200, r.text
        acked = r.json()
        assert acked["lifecycle"] == "acknowledged" and acked["ack_comment"] == "crew sent"
        assert acked["acked_by"] == f"test reader ({key[:10]})"
        ((at,),) = await query(copy_url, "SELECT acked_at FROM episodes WHERE id = %s",
                               (lamp["id"],))  # fmt: skip
        assert datetime.fromisoformat(acked["acked_at"]) == at
        again = await client.post(f"/v1/anomalies/{lamp['id']}/ack", json={"comment": "me too"})
        assert again.json()["ack_comment"] == "crew sent"  # the first acknowledgement stands
        assert [a["id"] for a in await _items(client, lifecycle="acknowledged")] == [lamp["id"]]
        r = await client.post(f"/v1/anomalies/{lamp['id']}/resolve", json={"comment": "replaced"})
        resolved = r.json()
        assert resolved["lifecycle"] == "resolved" and resolved["resolve_comment"] == "replaced"
        assert resolved["resolved_at"] >= resolved["acked_at"]
        assert lamp["id"] not in [a["id"] for a in await _items(client, lifecycle="unresolved")]
        found = await _items(client, lifecycle="resolved", q="REPLAC")
        assert [a["id"] for a in found] == [lamp["id"]]
        assert await _items(client, lifecycle="resolved", q="nothing like it") == []
        assert (await client.get(f"/v1/anomalies/{lamp['id']}")).json() == resolved


async def test_resolving_acknowledges_and_unknown_ids_are_404(copy_url: str) -> None:
    async with api_client(copy_url, await new_key(copy_url, "admin")) as client:
        (surge,) = await _items(client, detector="deviation", metric="voltage_v")
        r = await client.post(f"/v1/anomalies/{surge['id']}/resolve", json={})
        done = r.json()
        assert done["lifecycle"] == "resolved" and done["acked_by"] == done["resolved_by"]
        assert done["acked_at"] == done["resolved_at"]
        for path in ("/v1/anomalies/999999/ack", "/v1/anomalies/999999/resolve"):
            r = await client.post(path, json={"comment": "x"})
            assert r.status_code == 404 and r.json()["type"] == "/problems/not-found"
        r = await client.post(f"/v1/anomalies/{surge['id']}/ack", json={"comment": "x" * 2001})
        assert r.status_code == 422
    async with api_client(copy_url, None) as anonymous:
        r = await anonymous.post(f"/v1/anomalies/{surge['id']}/ack", json={})
        assert r.status_code == 401
