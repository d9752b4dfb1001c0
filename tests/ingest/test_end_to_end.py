"""Gateways publish through a real Mosquitto; the ingester commits to a real PostgreSQL."""

from __future__ import annotations

import msgspec

from citytel.local import LocalMosquitto
from devices.contract import topic
from ingest.config import Broker, IngesterConfig
from ingest.ingester import Ingester
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


def _ingester(database_url: str, broker: LocalMosquitto, prefix: str) -> Ingester:
    return make_ingester(database_url, broker, prefix, "ingest", batch_max_wait_s=0.05)


async def test_valid_readings_are_stored_once_and_bad_input_is_dead_lettered(
    database_url: str, mosquitto: LocalMosquitto, topic_prefix: str
) -> None:
    p = topic_prefix
    expected: set[tuple[str, int, str, float]] = set()
    messages: list[tuple[str, bytes]] = []
    announce = {
        "gateway_id": "gw-a",
        "devices": [
            {"device_id": "sl-a0", "kind": "streetlight", "latitude": 41.9, "longitude": -87.6},
            {"device_id": "sl-a1", "kind": "streetlight", "latitude": 41.8, "longitude": -87.7},
        ],
    }
    messages.append((topic("gw-a", "devices", prefix=p), msgspec.json.encode(announce)))
    for gateway, devices in (
        ("gw-a", ["sl-a0", "sl-a1"]),
        ("gw-b", ["env-b0"]),
        ("gw-c", ["tr-c0", "tr-c1", "tr-c2"]),
    ):
        for seq in range(1, 21):
            readings = []
            for i, device in enumerate(devices):
                ts = T0_MS + seq * 60_000
                value = float(seq * 10 + i)
                readings.append(
                    reading(device, ts, power_w=value)
                    if gateway == "gw-a"
                    else reading(device, ts, speed_kmh=value % 200)
                )
                metric = "power_w" if gateway == "gw-a" else "speed_kmh"
                expected.add((device, ts, metric, value if gateway == "gw-a" else value % 200))
            payload = telemetry(gateway, seq, readings)
            messages.append((topic(gateway, "telemetry", prefix=p), payload))
            if seq in (5, 6):  # re-sent with the same seq: stored once
                messages.append((topic(gateway, "telemetry", prefix=p), payload))
    # one malformed message, and one whose second reading is out of range
    messages.append((topic("gw-b", "telemetry", prefix=p), b'{"gateway_id": "gw-b", "seq": 9'))
    mixed = telemetry(
        "gw-b",
        100,
        [reading("env-b0", T0_MS, speed_kmh=33.0), reading("env-b0", T0_MS + 1, speed_kmh=9999.0)],
    )
    expected.add(("env-b0", T0_MS, "speed_kmh", 33.0))
    messages.append((topic("gw-b", "telemetry", prefix=p), mixed))
    # a MessagePack message with an RFC 3339 timestamp
    packed = msgspec.msgpack.encode(
        {
            "gateway_id": "gw-c",
            "seq": 500,
            "readings": [
                {
                    "device_id": "tr-c0",
                    "ts": "2025-11-21T22:10:00.250+00:00",
                    "metrics": {"occupancy_pct": 12.5},
                }
            ],
        }
    )
    messages.append((topic("gw-c", "telemetry/msgpack", prefix=p), packed))
    expected.add(("tr-c0", 1_763_763_000_250, "occupancy_pct", 12.5))

    async with _ingester(database_url, mosquitto, p) as ingester:
        await publish(mosquitto, messages)

        async def all_in() -> bool:
            rows = await query(database_url, "SELECT count(*) FROM dead_letters")
            return ingester.stats.deliveries >= len(messages) and rows[0][0] >= 2

        await wait_until(all_in)

    rows = await query(
        database_url,
        "SELECT d.device_id, (extract(epoch FROM r.time) * 1000)::bigint, m.name, r.value"
        " FROM metric_values r JOIN devices d ON d.id = r.device JOIN metrics m ON m.id = r.metric",
    )
    assert len(rows) == len(expected)  # each once
    assert set(rows) == expected
    letters = await query(
        database_url, "SELECT reason, gateway_id, seq FROM dead_letters ORDER BY reason"
    )
    assert letters == [("malformed", "gw-b", None), ("out_of_range", "gw-b", 100)]
    devices = await query(database_url, "SELECT device_id, announced, kind FROM devices ORDER BY 1")
    assert ("sl-a0", True, "streetlight") in devices
    assert ("tr-c1", False, None) in devices  # never announced, still stored
    stats = ingester.stats
    assert stats.duplicates == 6 and stats.messages == 62
    assert stats.dead_letters == {"malformed": 1, "out_of_range": 1}


async def test_gateway_status_is_recorded(
    database_url: str, mosquitto: LocalMosquitto, topic_prefix: str
) -> None:
    async with _ingester(database_url, mosquitto, topic_prefix) as ingester:
        await publish(
            mosquitto,
            [
                (topic("gw-s", "status", prefix=topic_prefix), b"online"),
                (topic("gw-s", "status", prefix=topic_prefix), b"offline"),
                (topic("gw-s", "status", prefix=topic_prefix), b"sleepy"),
            ],
        )
        await wait_until(lambda: delivered(ingester, 3))
    assert await query(database_url, "SELECT status FROM gateways WHERE gateway_id = 'gw-s'") == [
        ("offline",)
    ]
    assert await query(database_url, "SELECT reason FROM dead_letters") == [("invalid_status",)]


async def test_acks_follow_commits_and_the_session_outlives_the_ingester(
    database_url: str, mosquitto: LocalMosquitto, topic_prefix: str
) -> None:
    def batch(first: int) -> list[tuple[str, bytes]]:
        return [
            (
                topic("gw-p", "telemetry", prefix=topic_prefix),
                telemetry("gw-p", seq, [reading("sl-p", T0_MS + seq, power_w=1.0)]),
            )
            for seq in range(first, first + 50)
        ]

    async with _ingester(database_url, mosquitto, topic_prefix) as ingester:
        await publish(mosquitto, batch(1))
        await wait_until(lambda: delivered(ingester, 50))
    # Published while no ingester runs: the broker queues them for the session.
    await publish(mosquitto, batch(51))
    async with _ingester(database_url, mosquitto, topic_prefix) as again:
        await wait_until(lambda: delivered(again, 50))
        # A later message arrives after anything the broker still had queued or in flight
        # for the session: once it is in, nothing else is coming.
        await publish(mosquitto, batch(101)[:1])
        await wait_until(lambda: delivered(again, 51))
        # Exactly the 50 queued ones and the later one: the first 50 were acknowledged
        # after their commit, so none of them came again.
        assert again.stats.deliveries == 51 and again.stats.duplicates == 0
    rows = await query(database_url, "SELECT count(*), count(DISTINCT time) FROM metric_values")
    assert rows == [(101, 101)]


async def test_ingesters_in_a_share_group_split_the_load_and_store_each_message_once(
    database_url: str, mosquitto: LocalMosquitto, topic_prefix: str
) -> None:
    group = topic_prefix.strip("/")
    messages = [
        (
            topic(f"gw-{g}", "telemetry", prefix=topic_prefix),
            telemetry(f"gw-{g}", seq, [reading(f"sl-{g}", T0_MS + seq, power_w=2.0)]),
        )
        for g in range(4)
        for seq in range(1, 101)
    ]
    first = Ingester(
        database_url=database_url,
        broker=Broker(port=mosquitto.port),
        config=IngesterConfig(
            client_id=f"{group}-1",
            share_group=group,
            topic_prefix=topic_prefix,
            batch_max_wait_s=0.05,
        ),
    )
    second = Ingester(
        database_url=database_url,
        broker=Broker(port=mosquitto.port),
        config=IngesterConfig(
            client_id=f"{group}-2",
            share_group=group,
            topic_prefix=topic_prefix,
            batch_max_wait_s=0.05,
        ),
    )
    async with first, second:
        await publish(mosquitto, messages)

        async def all_in() -> bool:
            return first.stats.deliveries + second.stats.deliveries >= len(messages)

        await wait_until(all_in)
    assert first.stats.deliveries > 0 and second.stats.deliveries > 0  # shared, not copied
    assert first.stats.messages + second.stats.messages == 400
    assert await query(database_url, "SELECT count(*) FROM metric_values") == [(400,)]
