"""Gateways: status, last seen, message rate, lost messages (seq gaps)."""

from __future__ import annotations

import httpx

from citytel.local import LocalMosquitto
from devices.contract import topic
from tests.api.conftest import LOST_SEQS, City, api_client, new_key
from tests.helpers import (
    T0_MS,
    delivered,
    make_ingester,
    publish,
    query,
    reading,
    telemetry,
    wait_until,
)


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
    one = await reader.get("/v1/gateways/gw-n", params={"lookback": 120})
    assert one.status_code == 200 and one.json()["lookback_s"] == 120
    missing = await reader.get("/v1/gateways/gw-zz")
    assert missing.status_code == 404 and missing.json()["type"] == "/problems/not-found"
    bad = await reader.get("/v1/gateways", params={"lookback": 5})
    assert bad.status_code == 422


async def test_a_seq_restart_is_a_new_epoch_and_refused_messages_are_not_lost(
    database_url: str, mosquitto: LocalMosquitto, topic_prefix: str
) -> None:
    p = topic_prefix
    seqs = [1, 2, 3, 4, 5, 8, 1_000_000, 1_000_001, 1_000_003]  # lost: 6, 7, 1_000_002
    messages = [
        (
            topic("gw-r", "telemetry", prefix=p),
            telemetry("gw-r", s, [reading("r", T0_MS + s, power_w=1)]),
        )
        for s in seqs
    ]
    messages.append((topic("gw-r", "telemetry", prefix=p), b"not json"))
    async with make_ingester(database_url, mosquitto, p, "epochs", batch_max_wait_s=0.05) as ing:
        await publish(mosquitto, messages)
        await wait_until(lambda: delivered(ing, len(messages)))
    key = await new_key(database_url, "reader")
    async with api_client(database_url, key) as client:
        r = await client.get("/v1/gateways/gw-r")
    assert r.status_code == 200, r.text
    g = r.json()
    assert (g["messages"], g["lost_messages"], g["seq_epochs"], g["refused_messages"]) == (
        9,
        3,
        2,
        1,
    )
