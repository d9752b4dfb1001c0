"""The shipped catalog's new kinds through the real broker and ingester: announced, stored,
and held to their own metrics."""

from __future__ import annotations

import msgspec

from citytel.local import LocalMosquitto
from devices.catalog import BY_NAME
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

DEVICES = [
    {"device_id": "bay-1", "kind": "parking_bay", "latitude": 41.9, "longitude": -87.6},
    {"device_id": "bin-1", "kind": "waste_bin", "latitude": 41.9, "longitude": -87.6},
    {"device_id": "ped-1", "kind": "people_counter", "latitude": 41.9, "longitude": -87.6},
]


async def test_new_kinds_are_announced_and_their_values_stored(
    database_url: str, mosquitto: LocalMosquitto, topic_prefix: str
) -> None:
    announce = msgspec.json.encode({"gateway_id": "gw-k", "devices": DEVICES})
    readings = [
        reading("bay-1", T0_MS, bay_occupied=1.0),
        reading("bin-1", T0_MS, fill_pct=40.0, bin_temperature_c=12.0),
        reading("ped-1", T0_MS, pedestrians=17.0),
        reading("bay-1", T0_MS + 1, fill_pct=3.0),  # a waste bin's metric from a parking bay
    ]
    messages = [
        (topic("gw-k", "devices", prefix=topic_prefix), announce),
        (topic("gw-k", "telemetry", prefix=topic_prefix), telemetry("gw-k", 1, readings)),
    ]
    ingester = make_ingester(database_url, mosquitto, topic_prefix, "kinds", batch_max_wait_s=0.05)
    async with ingester:
        await publish(mosquitto, messages[:1])
        await wait_until(lambda: delivered(ingester, 1))
        await publish(mosquitto, messages[1:])
        await wait_until(lambda: delivered(ingester, 2))
    kinds = await query(database_url, "SELECT device_id, kind FROM devices ORDER BY 1")
    assert kinds == [("bay-1", "parking_bay"), ("bin-1", "waste_bin"), ("ped-1", "people_counter")]
    stored = await query(
        database_url,
        "SELECT d.device_id, r.metric, r.value FROM metric_values r"
        " JOIN devices d ON d.id = r.device"
        " ORDER BY 1, 2",
    )
    assert stored == [
        ("bay-1", BY_NAME["bay_occupied"].id, 1.0),
        ("bin-1", BY_NAME["fill_pct"].id, 40.0),
        ("bin-1", BY_NAME["bin_temperature_c"].id, 12.0),
        ("ped-1", BY_NAME["pedestrians"].id, 17.0),
    ]
    letters = await query(database_url, "SELECT reason FROM dead_letters")
    assert letters == [("metric_not_of_kind",)]
