"""The outbox across an ingester SIGKILL: every episode change the ingester committed has
its notification, exactly one, and no notification exists without its change."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import msgspec
import pytest

from citytel.local import LocalMosquitto
from devices.contract import topic
from storage import alerts
from storage.database import connect
from tests.helpers import ThreadedGateway, query, reading, telemetry, wait_until

pytestmark = pytest.mark.slow

DEVICES = 300
PER_MESSAGE = 10
STEPS = 8  # ten minutes apart: dark and unlit from step 0, lit again from step 5
T0_MS = 1_764_000_000_000


def _messages(prefix: str) -> list[tuple[str, bytes]]:
    ids = [f"sk-{i:03d}" for i in range(DEVICES)]
    announce = {
        "gateway_id": "gw-k",
        "devices": [
            {"device_id": d, "kind": "streetlight", "latitude": 41.8, "longitude": -87.6}
            for d in ids
        ],
    }
    out = [(topic("gw-k", "devices", prefix=prefix), msgspec.json.encode(announce))]
    seq = 0
    for step in range(STEPS):
        lit = step >= 5
        for i in range(0, DEVICES, PER_MESSAGE):
            seq += 1
            rs = [
                reading(
                    d,
                    T0_MS + step * 600_000,
                    power_w=60.0 if lit else 0.4,
                    dim_pct=50.0,
                    lamp_on=1.0,
                    ambient_lux=3.0,
                )
                for d in ids[i : i + PER_MESSAGE]
            ]
            out.append((topic("gw-k", "telemetry", prefix=prefix), telemetry("gw-k", seq, rs)))
    return out


async def _count(url: str, sql: str) -> int:
    return int((await query(url, sql))[0][0])


async def test_an_ingester_killed_mid_stream_leaves_one_notification_per_change(
    database_url: str, mosquitto: LocalMosquitto, topic_prefix: str
) -> None:
    conn = await connect(database_url, autocommit=True)
    try:
        endpoint = await alerts.create_endpoint(conn, url="http://127.0.0.1:9/hook")
        fields = dict.fromkeys(("kind", "metric", "min_severity", "gateway"))
        box = dict.fromkeys(("min_lon", "min_lat", "max_lon", "max_lat"))
        await alerts.create_rule(
            conn,
            {**fields, **box, "detector": "lamp_out", "changes": ["opened", "ended"],
             "endpoint": endpoint["id"]},
        )  # fmt: skip
    finally:
        await conn.close()
    env = {
        **os.environ,
        "CITYTEL_DATABASE_URL": database_url,
        "CITYTEL_MQTT_URL": mosquitto.url,
        "CITYTEL_CLIENT_ID": f"alerts-kill-{topic_prefix}",
        "CITYTEL_TOPIC_PREFIX": topic_prefix,
        "CITYTEL_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "citytel.cli", "ingest"]
    messages = _messages(topic_prefix)
    telemetry_count = len(messages) - 1
    first = subprocess.Popen(command, env=env)
    gateway = ThreadedGateway(mosquitto.port, client_id=f"gw-k-{topic_prefix}")
    # the announcement, re-sent until the ingester has it (subscribed, kernels compiled)
    for _ in range(240):
        await asyncio.to_thread(gateway.publish_all, messages[:1], rate=1)
        if await _count(database_url, "SELECT count(*) FROM devices WHERE kind IS NOT NULL"):
            break
        await asyncio.sleep(0.5)
    publishing = asyncio.create_task(asyncio.to_thread(gateway.publish_all, messages[1:], rate=100))

    async def some_episodes() -> bool:
        return await _count(database_url, "SELECT count(*) FROM episodes") > 20

    await wait_until(some_episodes, within_s=120)
    first.send_signal(signal.SIGKILL)
    first.wait()
    at_kill = await _count(database_url, "SELECT count(*) FROM messages")
    second = subprocess.Popen(command, env=env)
    try:
        await publishing
        gateway.close()

        async def all_committed() -> bool:
            return await _count(database_url, "SELECT count(*) FROM messages") >= telemetry_count

        await wait_until(all_committed, within_s=120)
    finally:
        second.send_signal(signal.SIGINT)
        second.wait(30)
    assert 0 < at_kill < telemetry_count  # the kill landed mid-stream
    episodes = await _count(
        database_url, "SELECT count(*) FROM episodes WHERE detector = 'lamp_out'"
    )
    ended = await _count(
        database_url,
        "SELECT count(*) FROM episodes WHERE detector = 'lamp_out' AND ended_at IS NOT NULL",
    )
    assert episodes >= DEVICES // 2 and ended > 0
    rows = await query(
        database_url,
        "SELECT o.change, count(*), count(DISTINCT o.episode), count(e.id) FROM alert_outbox o"
        " LEFT JOIN episodes e ON e.id = o.episode GROUP BY o.change ORDER BY o.change",
    )
    # one notification per change, each of an episode that exists
    assert rows == [("ended", ended, ended, ended), ("opened", episodes, episodes, episodes)]
