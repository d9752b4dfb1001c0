"""Nothing lost, nothing doubled: each test breaks a real process while a gateway publishes.

Every scenario publishes a known set of numbered messages whose values are all distinct
(device, metric, time), then checks that each value is stored exactly once.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from citytel.local import LocalMosquitto, LocalPostgres
from storage.database import connect
from storage.migrate import upgrade
from tests.helpers import (
    ThreadedGateway,
    count_exactly_once,
    delivered,
    make_ingester,
    numbered_messages,
    publish,
    query,
    wait_until,
)

OUTAGE_S = float(os.environ.get("CITYTEL_TEST_OUTAGE_S", "60"))

pytestmark = pytest.mark.slow


@pytest.fixture
async def own_postgres(server_tmp: Path) -> AsyncIterator[LocalPostgres]:
    """A PostgreSQL of this test's own, which the test may stop and start."""
    pg = LocalPostgres(server_tmp / "pg", fsync=False)
    pg.start()
    conn = await connect(pg.url, autocommit=True)
    await upgrade(conn)
    await conn.close()
    yield pg
    pg.stop()


@pytest.fixture
def own_mosquitto(tmp_path: Path) -> Iterator[LocalMosquitto]:
    """A Mosquitto of this test's own, which the test may restart."""
    with LocalMosquitto(tmp_path / "mosquitto") as broker:
        yield broker


async def _all_committed(database_url: str, messages: int, *, within_s: float = 120) -> None:
    async def done() -> bool:
        rows = await query(database_url, "SELECT count(*) FROM messages")
        return bool(rows[0][0] >= messages)

    await wait_until(done, within_s=within_s)


async def test_ingester_killed_with_sigkill_mid_stream_loses_and_doubles_nothing(
    database_url: str, mosquitto: LocalMosquitto, topic_prefix: str
) -> None:
    env = {
        **os.environ,
        "CITYTEL_DATABASE_URL": database_url,
        "CITYTEL_MQTT_URL": mosquitto.url,
        "CITYTEL_CLIENT_ID": f"kill-{topic_prefix}",
        "CITYTEL_TOPIC_PREFIX": topic_prefix,
        "CITYTEL_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "citytel.cli", "ingest"]
    messages = numbered_messages("gw-k", 3000, prefix=topic_prefix)
    first = subprocess.Popen(command, env=env)
    gateway = ThreadedGateway(mosquitto.port, client_id=f"gw-k-{topic_prefix}")
    # One message first, re-sent (same seq, so stored once) until it is committed: then
    # the new ingester has subscribed and compiled its kernels (seconds on a cold JIT
    # cache), and the kill lands mid-stream.
    for _ in range(240):
        await asyncio.to_thread(gateway.publish_all, messages[:1], rate=1)
        if (await query(database_url, "SELECT count(*) FROM messages"))[0][0]:
            break
        await asyncio.sleep(0.5)
    publishing = asyncio.create_task(
        asyncio.to_thread(gateway.publish_all, messages[1:], rate=1000)
    )

    async def some_committed() -> bool:
        return bool((await query(database_url, "SELECT count(*) FROM messages"))[0][0] > 300)

    await wait_until(some_committed)
    first.send_signal(signal.SIGKILL)
    first.wait()
    at_kill = (await query(database_url, "SELECT count(*) FROM messages"))[0][0]
    second = subprocess.Popen(command, env=env)
    try:
        await publishing
        gateway.close()
        await _all_committed(database_url, 3000)
    finally:
        second.send_signal(signal.SIGINT)
        second.wait(30)
    assert 0 < at_kill < 3000  # the kill did land mid-stream
    assert await count_exactly_once(database_url) == (30_000, 30_000, 3000)


async def test_database_down_for_a_minute_memory_bounded_nothing_lost(
    own_postgres: LocalPostgres, mosquitto: LocalMosquitto, topic_prefix: str
) -> None:
    url = own_postgres.url
    messages = numbered_messages("gw-d", 2000, prefix=topic_prefix)
    ingester = make_ingester(
        url,
        mosquitto,
        topic_prefix,
        "down",
        receive_maximum=200,
        batch_max_messages=100,
        retry_max_s=2,
    )
    gateway = ThreadedGateway(mosquitto.port, client_id=f"gw-d-{topic_prefix}")
    held: list[int] = []
    async with ingester:
        await asyncio.to_thread(gateway.publish_all, messages[:500], rate=1000)
        await _all_committed(url, 500)
        await asyncio.to_thread(own_postgres.stop)
        publishing = asyncio.create_task(
            asyncio.to_thread(gateway.publish_all, messages[500:], rate=200)
        )
        for _ in range(int(OUTAGE_S * 10)):
            held.append(ingester.held)
            await asyncio.sleep(0.1)
        await asyncio.to_thread(own_postgres.start)
        await publishing
        gateway.close()
        await _all_committed(url, 2000)
    assert ingester.stats.write_retries > 0  # it did meet the outage
    assert max(held) <= 200  # the broker queued the rest
    assert max(held) >= 100  # and the ingester did fill its window
    assert await count_exactly_once(url) == (20_000, 20_000, 2000)


async def test_slow_database_bounds_memory_and_loses_nothing(
    database_url: str, mosquitto: LocalMosquitto, topic_prefix: str
) -> None:
    messages = numbered_messages("gw-s", 1500, prefix=topic_prefix)
    ingester = make_ingester(
        database_url, mosquitto, topic_prefix, "slow", receive_maximum=150, batch_max_messages=50
    )
    blocker = await connect(database_url, autocommit=True)
    held: list[int] = []
    async with ingester:
        async with blocker.transaction():
            # Writers wait on this lock: a database that has stopped keeping up.
            await blocker.execute("LOCK TABLE messages IN EXCLUSIVE MODE")
            await publish(mosquitto, messages)
            for _ in range(30):
                held.append(ingester.held)
                await asyncio.sleep(0.1)
        await _all_committed(database_url, 1500)
    await blocker.close()
    assert 50 <= max(held) <= 150
    assert await count_exactly_once(database_url) == (15_000, 15_000, 1500)


async def test_broker_restart_with_persistence_everyone_reconnects(
    database_url: str, own_mosquitto: LocalMosquitto, topic_prefix: str
) -> None:
    messages = numbered_messages("gw-r", 2000, prefix=topic_prefix)
    ingester = make_ingester(database_url, own_mosquitto, topic_prefix, "restart")
    async with ingester:
        gateway = ThreadedGateway(own_mosquitto.port, client_id=f"gw-r-{topic_prefix}")
        publishing = asyncio.create_task(asyncio.to_thread(gateway.publish_all, messages, rate=500))
        await _all_committed(database_url, 200)  # mid-stream: some stored, most to come
        await asyncio.to_thread(own_mosquitto.stop)
        await asyncio.sleep(2)  # the outage itself, not a wait for evidence
        await asyncio.to_thread(own_mosquitto.start)
        await publishing
        await asyncio.to_thread(gateway.close)
        await _all_committed(database_url, 2000)
    assert ingester._subscription.reconnects >= 1
    assert await count_exactly_once(database_url) == (20_000, 20_000, 2000)


async def test_a_gateway_replays_its_backlog_out_of_order_with_duplicates(
    database_url: str, mosquitto: LocalMosquitto, topic_prefix: str
) -> None:
    live = numbered_messages("gw-b", 100, prefix=topic_prefix)
    backlog = numbered_messages("gw-b", 400, prefix=topic_prefix, first_seq=101)
    replay = backlog + random.Random(7).sample(backlog, 120)  # 120 sent twice
    random.Random(8).shuffle(replay)
    ingester = make_ingester(database_url, mosquitto, topic_prefix, "backlog")
    async with ingester:
        await publish(mosquitto, live)
        await publish(mosquitto, replay)
        await _all_committed(database_url, 500)
        await wait_until(lambda: delivered(ingester, 620))
    assert ingester.stats.duplicates == 120
    assert await count_exactly_once(database_url) == (5_000, 5_000, 500)
    assert await query(database_url, "SELECT last_seq, messages_total FROM gateways") == [
        (500, 500)
    ]
