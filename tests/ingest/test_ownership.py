"""A gateway speaks only for its own devices: two gateways, one broker, one ingester."""

from __future__ import annotations

import msgspec

from citytel.local import LocalMosquitto
from devices.contract import topic
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


def _announce(gateway: str, *devices: str) -> bytes:
    infos = [{"device_id": d, "kind": "streetlight"} for d in devices]
    return msgspec.json.encode({"gateway_id": gateway, "devices": infos})


async def _owners(database_url: str) -> dict[str, str]:
    rows = await query(
        database_url,
        "SELECT d.device_id, g.gateway_id FROM devices d JOIN gateways g ON g.id = d.gateway",
    )
    return dict(rows)  # type: ignore[arg-type]


async def test_a_gateway_cannot_write_or_move_another_gateways_devices(
    database_url: str, mosquitto: LocalMosquitto, topic_prefix: str
) -> None:
    p, t = topic_prefix, T0_MS + 60_000
    messages = [
        (topic("gw-a", "devices", prefix=p), _announce("gw-a", "sl-a")),
        # B writes A's device, announces it as its own, and claims an unannounced one
        (
            topic("gw-b", "telemetry", prefix=p),
            telemetry("gw-b", 1, [reading("sl-a", t, power_w=666)]),
        ),
        (topic("gw-b", "devices", prefix=p), _announce("gw-b", "sl-a")),
        (
            topic("gw-b", "telemetry", prefix=p),
            telemetry("gw-b", 2, [reading("sl-new", t, power_w=2)]),
        ),
        # A keeps writing its own, and cannot write the device B claimed first
        (
            topic("gw-a", "telemetry", prefix=p),
            telemetry("gw-a", 1, [reading("sl-a", t, power_w=1)]),
        ),
        (
            topic("gw-a", "telemetry", prefix=p),
            telemetry("gw-a", 2, [reading("sl-new", t, power_w=7)]),
        ),
    ]
    async with make_ingester(database_url, mosquitto, p, "own", batch_max_wait_s=0.05) as ing:
        for m in messages:  # one by one: the order of claims is the test
            await publish(mosquitto, [m])
            n = messages.index(m) + 1
            await wait_until(lambda n=n: delivered(ing, n))  # type: ignore[misc]
    assert await _owners(database_url) == {"sl-a": "gw-a", "sl-new": "gw-b"}
    values = await query(
        database_url,
        "SELECT d.device_id, r.value FROM metric_values r JOIN devices d ON d.id = r.device"
        " ORDER BY 1",
    )
    assert values == [("sl-a", 1.0), ("sl-new", 2.0)]
    letters = await query(
        database_url, "SELECT gateway_id, reason FROM dead_letters ORDER BY received_at"
    )
    assert letters == [
        ("gw-b", "device_not_of_gateway"),  # B's reading of sl-a
        ("gw-b", "device_not_of_gateway"),  # B's announcement of sl-a
        ("gw-a", "device_not_of_gateway"),  # A's reading of sl-new, which B claimed
    ]


async def test_unknown_devices_can_be_refused(
    database_url: str, mosquitto: LocalMosquitto, topic_prefix: str
) -> None:
    p, t = topic_prefix, T0_MS + 60_000
    messages = [
        (topic("gw-a", "devices", prefix=p), _announce("gw-a", "sl-known")),
        (
            topic("gw-a", "telemetry", prefix=p),
            telemetry(
                "gw-a", 1, [reading("sl-known", t, power_w=1), reading("sl-x", t, power_w=2)]
            ),
        ),
    ]
    options = {"batch_max_wait_s": 0.05, "unknown_devices": "refuse"}
    async with make_ingester(database_url, mosquitto, p, "refuse", **options) as ing:
        for i, m in enumerate(messages, 1):
            await publish(mosquitto, [m])
            await wait_until(lambda i=i: delivered(ing, i))  # type: ignore[misc]
    assert await _owners(database_url) == {"sl-known": "gw-a"}
    assert await query(database_url, "SELECT value FROM metric_values") == [(1.0,)]
    assert await query(database_url, "SELECT reason FROM dead_letters") == [("unknown_device",)]
