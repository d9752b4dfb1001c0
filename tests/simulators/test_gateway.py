"""Simulated gateways as real MQTT clients, against a real Mosquitto."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import msgspec
import pytest

from citytel.local import LocalMosquitto
from devices.contract import Telemetry
from simulators.city import build_city
from simulators.faults import Fault, read_ground_truth
from simulators.gateway import GatewayClient
from simulators.generator import CityGenerator, Message, StatusChange
from simulators.run import Simulation

ROOT = "city/v1/gateways"


@pytest.fixture
def own_mosquitto(tmp_path: Path) -> Iterator[LocalMosquitto]:
    """A Mosquitto of this test's own, which the test may stop and start."""
    with LocalMosquitto(tmp_path / "mosquitto") as broker:
        yield broker


class Listener:
    """Subscribes to every gateway channel under ``prefix``, with a persistent session
    (it gets what was published while it was away, across broker restarts)."""

    def __init__(self, port: int, prefix: str, name: str) -> None:
        self.port, self.prefix, self.name = port, prefix, name
        self.telemetry: list[Telemetry] = []
        self.status: list[tuple[str, str]] = []
        self.announced: list[str] = []
        self.subscribed = asyncio.Event()

    async def run(self) -> None:
        decode = msgspec.json.Decoder(Telemetry)
        while True:
            try:
                async with aiomqtt.Client(
                    "127.0.0.1",
                    self.port,
                    identifier=self.name,
                    clean_session=False,
                    protocol=aiomqtt.ProtocolVersion.V311,
                ) as client:
                    await client.subscribe(f"{self.prefix}{ROOT}/#", qos=1)
                    self.subscribed.set()
                    async for m in client.messages:
                        channel = str(m.topic).split("/")[-1]
                        gid = str(m.topic).removeprefix(f"{self.prefix}{ROOT}/").split("/")[0]
                        assert isinstance(m.payload, bytes)
                        if channel == "telemetry":
                            self.telemetry.append(decode.decode(m.payload))
                        elif channel == "status":
                            self.status.append((gid, m.payload.decode()))
                        elif channel == "devices":
                            self.announced.append(json.loads(m.payload)["gateway_id"])
            except aiomqtt.MqttError:
                await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def listening(port: int, prefix: str, name: str) -> AsyncIterator[Listener]:
    listener = Listener(port, prefix, name)
    task = asyncio.create_task(listener.run())
    await asyncio.wait_for(listener.subscribed.wait(), 10)
    try:
        yield listener
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def until(condition: object, within_s: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + within_s
    while not condition():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


def _messages(n: int, gateway_id: str = "gw-0000") -> Iterator[Telemetry]:
    for seq in range(n):
        yield Telemetry(gateway_id, seq, [], 1_763_337_600_000 + seq)


async def test_a_gateway_that_reconnects_delivers_its_backlog_in_seq_order(
    own_mosquitto: LocalMosquitto,
) -> None:
    city = build_city(streetlights=3, environment=0, traffic=0, gateways=1)
    async with listening(own_mosquitto.port, "", "listener-backlog") as listener:
        gateway = GatewayClient(city[0], host="127.0.0.1", port=own_mosquitto.port, in_flight=4)
        gateway.start()
        await gateway.until_connected()
        messages = list(_messages(600))
        for m in messages[:200]:
            gateway.enqueue(gateway.encode(m))
        await until(lambda: gateway.acked >= 100)
        await asyncio.to_thread(own_mosquitto.stop)  # mid-stream: some in flight
        for m in messages[200:500]:  # queued while the broker is away: the backlog
            gateway.enqueue(gateway.encode(m))
            await asyncio.sleep(0.001)
        assert gateway.backlog >= 300
        await asyncio.to_thread(own_mosquitto.start)
        for m in messages[500:]:
            gateway.enqueue(gateway.encode(m))
        await until(lambda: gateway.backlog == 0)
        await until(lambda: {t.seq for t in listener.telemetry} >= set(range(600)))
        await gateway.close()
    assert gateway.reconnects >= 1
    seqs = [t.seq for t in listener.telemetry]
    # At least once: what was in flight when the broker went may come again, but after
    # the reconnect the backlog comes in seq order, without gaps.
    restart = (
        max(i for i in range(1, len(seqs)) if seqs[i] <= seqs[i - 1])
        if any(seqs[i] <= seqs[i - 1] for i in range(1, len(seqs)))
        else 0
    )
    after = seqs[restart:]
    assert after == list(range(after[0], 600))
    assert set(seqs[:restart]) | set(after) == set(range(600))
    assert listener.announced.count(city[0].gateway_id) >= 2  # announced again


async def test_offline_sends_the_will_and_online_comes_back(
    mosquitto: LocalMosquitto, topic_prefix: str
) -> None:
    city = build_city(streetlights=2, environment=1, traffic=1, gateways=1)
    gid = city[0].gateway_id
    async with listening(mosquitto.port, topic_prefix, f"listener-{topic_prefix}") as listener:
        gateway = GatewayClient(city[0], host="127.0.0.1", port=mosquitto.port, prefix=topic_prefix)
        gateway.start()
        await gateway.until_connected()
        await until(lambda: (gid, "online") in listener.status)
        gateway.enqueue(gateway.encode(next(_messages(1, gid))))
        await gateway.go_offline()
        await until(lambda: listener.status[-1] == (gid, "offline"))
        assert gateway.acked == 1  # what was queued went out before the uplink dropped
        gateway.go_online()
        await until(lambda: listener.status[-1] == (gid, "online"))
        await until(lambda: listener.announced.count(gid) == 2)
        await gateway.close()
        await until(lambda: listener.status[-1] == (gid, "offline"))
    assert gateway.reconnects == 0  # going offline on purpose is not a lost connection


async def test_a_backfill_publishes_exactly_the_generators_stream(
    mosquitto: LocalMosquitto, topic_prefix: str, tmp_path: Path
) -> None:
    city = build_city(seed=3, streetlights=40, environment=10, traffic=10, gateways=3)
    start = datetime(2025, 11, 18, tzinfo=UTC)
    end = start + timedelta(hours=6)
    g0, g1 = city[0].gateway_id, city[1].gateway_id
    faults = [
        Fault(
            "backlog_replay", g0, None, (), start + timedelta(hours=1), start + timedelta(hours=2)
        ),
        Fault("duplicate", g1, None, (), start + timedelta(hours=1), start + timedelta(hours=2)),
        Fault("out_of_order", g1, None, (), start + timedelta(hours=3), start + timedelta(hours=4)),
    ]
    args = dict(start=start, end=end, interval_s=300.0, seed=5, fault_rate=2.0, faults=faults)
    expected = list(CityGenerator(city, **args).events())  # type: ignore[arg-type]
    truth = tmp_path / "truth.jsonl"
    async with listening(mosquitto.port, topic_prefix, f"l-{topic_prefix}") as listener:
        async with Simulation(
            city,
            host="127.0.0.1",
            port=mosquitto.port,
            prefix=topic_prefix,
            speed=0,
            ground_truth=truth,
            **args,  # type: ignore[arg-type]
        ) as sim:
            await asyncio.wait_for(sim.wait(), 60)
        published = [m for m in expected if isinstance(m, Message)]
        await until(lambda: len(listener.telemetry) >= len(published))
    received: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for t in listener.telemetry:
        received[t.gateway_id].append((t.seq, len(t.readings)))
    for g in city:
        wanted = [(m.seq, len(m.readings)) for m in published if m.gateway_id == g.gateway_id]
        assert received[g.gateway_id] == wanted, g.gateway_id
    assert sim.stats.messages == len(published)
    assert sim.stats.values == sum(m.values for m in published)
    offline = [(s.gateway_id, "offline") for s in expected if isinstance(s, StatusChange)]
    assert set(offline) <= set(listener.status)
    written = read_ground_truth(truth)
    assert sorted(written, key=str) == sorted(sim.generator.faults, key=str)
    assert set(faults) <= set(written)


async def test_a_run_stopped_early_writes_the_fault_under_way_cut_at_the_stop(
    mosquitto: LocalMosquitto, topic_prefix: str, tmp_path: Path
) -> None:
    city = build_city(streetlights=4, environment=2, traffic=2, gateways=1)
    gid = city[0].gateway_id
    env = next(d.device_id for d in city[0].devices if d.device_id.startswith("env-"))
    start = datetime(2025, 11, 18, tzinfo=UTC)
    minutes = timedelta(minutes=1)
    under_way = Fault(
        "drift", gid, env, ("temperature_c",), start + 10 * minutes, start + 1200 * minutes
    )
    not_begun = Fault(
        "stuck", gid, env, ("no2_ppb",), start + 1300 * minutes, start + 1400 * minutes
    )
    truth = tmp_path / "truth.jsonl"
    async with Simulation(
        city,
        host="127.0.0.1",
        port=mosquitto.port,
        prefix=topic_prefix,
        start=start,
        end=start + timedelta(days=1),
        interval_s=60,
        speed=36_000,  # ten hours a second
        faults=[under_way, not_begun],
        ground_truth=truth,
    ):
        await asyncio.sleep(0.5)  # stopped after about five simulated hours
    (written,) = read_ground_truth(truth)
    assert (written.fault, written.device_id, written.start) == ("drift", env, under_way.start)
    assert under_way.start < written.end < under_way.end
