"""Helpers shared by tests: publishing as a gateway, waiting for the database."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiomqtt
import msgspec

from citytel.local import LocalMosquitto
from storage.database import connect

T0_MS = 1_763_762_999_000


def telemetry(gateway_id: str, seq: int, readings: list[dict[str, Any]]) -> bytes:
    return msgspec.json.encode(
        {
            "gateway_id": gateway_id,
            "seq": seq,
            "sent_at": int(time.time() * 1000),
            "readings": readings,
        }
    )


def reading(device_id: str, ts_ms: int, **metrics: float) -> dict[str, Any]:
    return {"device_id": device_id, "ts": ts_ms, "metrics": metrics}


async def publish(
    broker: LocalMosquitto, messages: list[tuple[str, bytes]], *, retain: bool = False
) -> None:
    async with aiomqtt.Client(
        "127.0.0.1", broker.port, protocol=aiomqtt.ProtocolVersion.V5
    ) as client:
        for topic, payload in messages:
            await client.publish(topic, payload, qos=1, retain=retain)


async def query(database_url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = await connect(database_url, autocommit=True)
    try:
        cur = await conn.execute(sql, params)  # type: ignore[arg-type]
        return await cur.fetchall()
    finally:
        await conn.close()


async def wait_until(check: Callable[[], Awaitable[bool]], *, within_s: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + within_s
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {within_s} s")
        await asyncio.sleep(0.1)
