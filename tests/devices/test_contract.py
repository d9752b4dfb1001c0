from __future__ import annotations

from devices.catalog import BY_ID, METRICS, Kind, metrics_of
from devices.contract import parse_topic, subscriptions, topic


def test_topics_round_trip() -> None:
    for channel in ("telemetry", "telemetry/msgpack", "status", "devices"):
        assert parse_topic(topic("gw-7", channel)) == ("gw-7", channel)
        assert parse_topic(topic("gw-7", channel, prefix="t1/"), prefix="t1/") == ("gw-7", channel)
    assert parse_topic("city/v1/gateways/gw-7/other") is None
    assert parse_topic("city/v1/gateways//telemetry") is None
    assert parse_topic("city/v2/gateways/gw-7/telemetry") is None
    assert parse_topic("city/v1/gateways/" + "g" * 65 + "/status") is None  # not an id
    assert parse_topic("city/v1/gateways/gw+7/status") is None
    assert subscriptions() == ["city/v1/gateways/#"]  # the whole subtree: nothing unheard


def test_catalog_ids_and_names_are_unique_and_ranges_sane() -> None:
    assert len({m.id for m in METRICS}) == len({m.name for m in METRICS}) == len(METRICS)
    assert all(0 < m.id < 2**15 and m.low < m.high for m in METRICS)
    assert BY_ID[1].name == "power_w"
    assert [m.name for m in metrics_of(Kind.TRAFFIC)] == [
        "speed_kmh",
        "volume_veh",
        "occupancy_pct",
    ]
    assert len(metrics_of(Kind.STREETLIGHT)) == 7 and len(metrics_of(Kind.ENVIRONMENT)) == 8
