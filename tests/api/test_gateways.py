"""Gateways: status, last seen, message rate, lost messages (seq gaps)."""

from __future__ import annotations

import httpx

from tests.api.conftest import LOST_SEQS, City
from tests.helpers import query


async def test_status_rate_and_lost_messages(reader: httpx.AsyncClient, city: City) -> None:
    r = await reader.get("/v1/gateways")
    assert r.status_code == 200
    by_id = {g["gateway_id"]: g for g in r.json()["items"]}
    assert set(by_id) == {"gw-n", "gw-s"}
    south, north = by_id["gw-s"], by_id["gw-n"]
    assert south["status"] == "offline" and north["status"] == "online"
    assert south["lost_messages"] == len(LOST_SEQS) and north["lost_messages"] == 0
    counts = dict(
        await query(
            city.url,
            "SELECT g.gateway_id, count(*) FROM messages m JOIN gateways g ON g.id = m.gateway"
            " GROUP BY 1",
        )
    )
    for gw in ("gw-n", "gw-s"):
        assert by_id[gw]["messages"] == by_id[gw]["messages_total"] == counts[gw]
        assert by_id[gw]["message_rate"] == counts[gw] / 3600
    assert south["last_seq"] == counts["gw-s"] + len(LOST_SEQS)
    assert north["devices"] == 3 and south["devices"] == 2


async def test_filters_one_gateway_and_errors(reader: httpx.AsyncClient) -> None:
    offline = (await reader.get("/v1/gateways", params={"status": "offline"})).json()["items"]
    assert [g["gateway_id"] for g in offline] == ["gw-s"]
    one = await reader.get("/v1/gateways/gw-n", params={"window": 120})
    assert one.status_code == 200 and one.json()["window_s"] == 120
    missing = await reader.get("/v1/gateways/gw-zz")
    assert missing.status_code == 404 and missing.json()["type"] == "/problems/not-found"
    bad = await reader.get("/v1/gateways", params={"window": 5})
    assert bad.status_code == 422
