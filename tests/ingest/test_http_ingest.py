"""POST /v1/ingest/{gateway_id}: answered after the commit, idempotent, per-gateway tokens."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette

from citytel.http_ingest import ingest_route
from citytel.local import LocalMosquitto
from storage.database import connect
from storage.gateway_tokens import create_token
from tests.helpers import T0_MS, make_ingester, query, reading, telemetry


async def _token(database_url: str, gateway_id: str) -> str:
    conn = await connect(database_url, autocommit=True)
    try:
        return await create_token(conn, gateway_id)
    finally:
        await conn.close()


async def test_a_gateway_posts_its_messages_and_gets_what_was_stored(
    database_url: str, mosquitto: LocalMosquitto, topic_prefix: str
) -> None:
    token, other = await _token(database_url, "gw-h"), await _token(database_url, "gw-o")
    message = telemetry(
        "gw-h", 1, [reading("h-1", T0_MS, power_w=5, dim_pct=40), reading("h-2", T0_MS, power_w=-9)]
    )
    async with make_ingester(
        database_url, mosquitto, topic_prefix, "http", batch_max_wait_s=0.05
    ) as ing:
        app = Starlette(
            routes=[ingest_route(ing, database_url=database_url, max_payload_bytes=4096)]
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://citytel") as client:
            url = "/v1/ingest/gw-h"
            assert (await client.post(url, content=message)).status_code == 401
            wrong = {"Authorization": f"Bearer {other}"}
            assert (await client.post(url, content=message, headers=wrong)).status_code == 403
            auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            first = await client.post(url, content=message, headers=auth)
            again = await client.post(url, content=message, headers=auth)
            bad = await client.post(url, content=b"{", headers=auth)
            big = await client.post(url, content=b" " * 5000, headers=auth)
            xml = await client.post(
                url, content=b"<a/>", headers={**auth, "Content-Type": "text/xml"}
            )
    assert first.status_code == 200, first.text
    body = first.json()
    assert (body["values"], body["duplicate"]) == (2, False)
    assert [d["reason"] for d in body["dead_letters"]] == ["out_of_range"]
    assert again.json() == {"values": 0, "duplicate": True, "dead_letters": []}
    assert bad.status_code == 200 and [d["reason"] for d in bad.json()["dead_letters"]] == [
        "malformed"
    ]
    assert (big.status_code, xml.status_code) == (413, 415)
    assert await query(database_url, "SELECT count(*) FROM metric_values") == [(2,)]
    assert await query(database_url, "SELECT count(*) FROM messages") == [(1,)]
