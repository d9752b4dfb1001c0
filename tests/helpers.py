"""Helpers shared by tests: publishing as a gateway, waiting for the database."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiomqtt
import msgspec

from citytel.local import LocalMosquitto
from ingest.config import Broker, IngesterConfig
from ingest.ingester import Ingester
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


async def delivered(ingester: Ingester, n: int) -> bool:
    """Whether ``ingester`` has handled ``n`` deliveries (stored or dead-lettered)."""
    return ingester.stats.deliveries >= n


class ThreadedGateway:
    """A gateway on paho-mqtt: publishes in its own thread, reconnects by itself, and
    queues what it publishes while disconnected (as a field gateway buffers)."""

    def __init__(self, port: int, *, client_id: str) -> None:
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        self.acked = 0
        self.published = 0
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5
        )
        self._client.max_inflight_messages_set(100)
        self._client.max_queued_messages_set(0)
        self._client.reconnect_delay_set(0.2, 1)
        self._client.on_publish = self._on_publish
        self._client.connect("127.0.0.1", port)
        self._client.loop_start()

    def _on_publish(self, *args: Any) -> None:
        self.acked += 1

    def publish_all(self, messages: list[tuple[str, bytes]], *, rate: float) -> None:
        """Publish at ``rate`` messages/s (blocking the calling thread)."""
        start = time.monotonic()
        for i, (topic, payload) in enumerate(messages):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self._client.publish(topic, payload, qos=1)
            self.published += 1

    def close(self, *, within_s: float = 60.0) -> None:
        """Disconnect once the broker has acknowledged everything published."""
        deadline = time.monotonic() + within_s
        while self.acked < self.published and time.monotonic() < deadline:
            time.sleep(0.05)
        self._client.disconnect()
        self._client.loop_stop()


def numbered_messages(
    gateway_id: str, count: int, *, prefix: str, readings: int = 5, first_seq: int = 1
) -> list[tuple[str, bytes]]:
    """``count`` telemetry messages whose values are all distinct (device, metric, time)."""
    from devices.contract import topic

    out = []
    for seq in range(first_seq, first_seq + count):
        rs = [
            reading(
                f"{gateway_id}-sl{i}",
                T0_MS + seq * 1000,
                power_w=float(seq % 500),
                dim_pct=float(i),
            )
            for i in range(readings)
        ]
        out.append((topic(gateway_id, "telemetry", prefix=prefix), telemetry(gateway_id, seq, rs)))
    return out


async def count_exactly_once(database_url: str) -> tuple[int, int, int]:
    """(values stored, distinct (device, metric, time), messages stored)."""
    rows = await query(
        database_url,
        "SELECT count(*), count(DISTINCT (device, metric, time)),"
        " (SELECT count(*) FROM messages) FROM metric_values",
    )
    return rows[0]  # type: ignore[return-value]


def make_ingester(
    database_url: str, broker: LocalMosquitto, topic_prefix: str, name: str, **options: Any
) -> Ingester:
    """An ingester on a test's database, broker and topics, with a client id of its own."""
    config = IngesterConfig(
        client_id=f"{name}-{topic_prefix}", topic_prefix=topic_prefix, **options
    )
    return Ingester(database_url=database_url, broker=Broker(port=broker.port), config=config)
