from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.formats import FormatReason
from ingest.formats.chirpstack import Parser, subscriptions
from ingest.formats.mapping import MappingFile
from ingest.formats.units import CATALOG_UNITS
from ingest.limits import Limits
from ingest.reasons import Reason
from tests.ingest.formats.hostile import check_invariants, deep, dumps, json_values, mutate

EXAMPLES = Path(__file__).parent / "examples"
APP = "17c82e96-be03-4f38-aef3-f83d48582d97"
EUI = "0101010101010101"
LINK_UNITS = {
    **CATALOG_UNITS,
    "rssi_dbm": "dBm",
    "snr_db": "dB",
    "battery_pct": "%",
    "margin_db": "dB",
}


def topic(event: str, app: str = APP, eui: str = EUI) -> str:
    return f"application/{app}/device/{eui}/event/{event}"


def example(name: str) -> dict:
    return json.loads((EXAMPLES / f"chirpstack_{name}.json").read_text())


def test_uplink_as_documented_becomes_one_reading_of_the_decoded_object() -> None:
    parsed = Parser().parse(topic("up"), json.dumps(example("up")).encode())
    assert parsed.refusals == []
    assert parsed.gateway_id == APP
    [reading] = parsed.readings
    assert reading.device_id == EUI
    assert reading.metrics == {"temperature_c": 21.5, "humidity_pct": 48.0}
    # nanoseconds in the documented time, microseconds kept
    assert reading.ts == datetime(2022, 7, 18, 9, 34, 15, 775023, tzinfo=UTC)
    assert parsed.identity is not None and 0 <= parsed.identity < 2**63


def test_best_gateways_rssi_and_snr_are_kept_when_the_catalog_has_them() -> None:
    parsed = Parser(units=LINK_UNITS).parse(topic("up"), json.dumps(example("up")).encode())
    [reading] = parsed.readings
    assert reading.metrics["rssi_dbm"] == -36.0 and reading.metrics["snr_db"] == 10.5


def test_identity_is_the_deduplication_id_so_a_second_copy_has_the_same() -> None:
    parser = Parser()
    up = example("up")
    first = parser.parse(topic("up"), json.dumps(up).encode())
    up["rxInfo"] = up["rxInfo"][:1]  # the same uplink heard by fewer gateways
    again = parser.parse(topic("up"), json.dumps(up).encode())
    other = parser.parse(topic("up"), json.dumps({**up, "deduplicationId": "x"}).encode())
    assert first.identity == again.identity != other.identity


def test_status_event_shares_the_uplinks_id_but_not_its_identity() -> None:
    parser = Parser(units=LINK_UNITS)
    status = parser.parse(topic("status"), json.dumps(example("status")).encode())
    up = parser.parse(topic("up"), json.dumps(example("up")).encode())
    assert status.identity != up.identity
    [reading] = status.readings
    assert reading.metrics == {"battery_pct": 75.5, "margin_db": 6.0}


def test_status_metrics_the_catalog_lacks_are_refused_as_unmapped() -> None:
    parsed = Parser().parse(topic("status"), json.dumps(example("status")).encode())
    assert parsed.readings == []
    assert {r.reason for r in parsed.refusals} == {FormatReason.UNMAPPED_FIELD}
    assert {r.field for r in parsed.refusals} == {"battery_pct", "margin_db"}


def test_join_announces_the_device_with_the_sources_kind() -> None:
    mapping = MappingFile.model_validate({"source": {APP: {"kind": "environment"}}})
    parsed = Parser(mapping=mapping).parse(topic("join"), json.dumps(example("join")).encode())
    [device] = parsed.devices
    assert device.device_id == EUI and device.kind == "environment"
    assert device.attributes["dev_addr"] == "00189440"


def test_join_without_a_kind_is_refused_with_a_reason() -> None:
    parsed = Parser().parse(topic("join"), json.dumps(example("join")).encode())
    assert parsed.devices == []
    assert [r.reason for r in parsed.refusals] == [FormatReason.UNSUPPORTED]


def test_mapping_renames_converts_and_ignores() -> None:
    up = example("up")
    up["object"] = {"tempF": 212, "power": {"kw": 0.5}, "label": "ok", "noise": 3}
    mapping = MappingFile.model_validate(
        {
            "source": {
                APP: {
                    "gateway": "parking-north",
                    "devices": {EUI: "env-0001"},
                    "ignore": ["label"],
                    "fields": {
                        "tempF": {"metric": "temperature_c", "unit": "°F"},
                        "power.kw": {"metric": "power_w", "scale": 1000},
                    },
                }
            }
        }
    )
    parsed = Parser(mapping=mapping).parse(topic("up"), json.dumps(up).encode())
    assert parsed.gateway_id == "parking-north"
    [reading] = parsed.readings
    assert reading.device_id == "env-0001"
    assert reading.metrics["temperature_c"] == 100.0
    assert reading.metrics["power_w"] == 500.0
    assert [(r.reason, r.field) for r in parsed.refusals] == [
        (FormatReason.UNMAPPED_FIELD, "noise")
    ]


def test_bad_values_are_refused_field_by_field() -> None:
    up = example("up")
    up["object"] = {
        "temperature_c": "warm",
        "humidity_pct": None,
        "dim_pct": True,
        "power_w": 10**400,
    }
    parsed = Parser().parse(topic("up"), dumps(up))
    [reading] = parsed.readings
    assert reading.metrics == {"dim_pct": 1.0}
    reasons = {r.field: r.reason for r in parsed.refusals}
    assert reasons == {
        "temperature_c": FormatReason.INVALID_VALUE,
        "humidity_pct": FormatReason.INVALID_VALUE,
        "power_w": Reason.NOT_FINITE,
    }


def test_uplink_without_object_is_refused_but_radio_metrics_kept() -> None:
    up = example("up")
    del up["object"]
    parsed = Parser(units=LINK_UNITS).parse(topic("up"), json.dumps(up).encode())
    assert [r.reason for r in parsed.refusals] == [FormatReason.UNSUPPORTED]
    assert set(parsed.readings[0].metrics) == {"rssi_dbm", "snr_db"}


def test_whole_message_refusals() -> None:
    parser = Parser(limits=Limits(max_payload_bytes=100_000))
    good = json.dumps(example("up")).encode()
    cases = {
        "not json": (topic("up"), b"{nope", Reason.MALFORMED),
        "bad utf-8": (topic("up"), b'{"deduplicationId": "\xff"}', Reason.MALFORMED),
        "too deep": (topic("up"), deep(10_000), Reason.MALFORMED),
        "too big": (topic("up"), b" " * 100_001, Reason.PAYLOAD_TOO_LARGE),
        "wrong shape": (topic("up"), b'{"deduplicationId": 5}', Reason.INVALID_MESSAGE),
        "other device": (topic("up", eui="0202020202020202"), good, Reason.INVALID_MESSAGE),
        "not an event": (f"application/{APP}/device/{EUI}/event/ack", good, Reason.INVALID_TOPIC),
        "bad id": (
            topic("up", app="a b", eui=EUI),
            json.dumps(mutate(example("up"), ["deviceInfo", "applicationId"], "a b")).encode(),
            FormatReason.INVALID_ID,
        ),
    }
    for name, (t, payload, reason) in cases.items():
        parsed = parser.parse(t, payload)
        assert [r.reason for r in parsed.refusals] == [reason], name
        assert parsed.readings == [], name


def test_subscriptions_cover_the_three_events() -> None:
    assert subscriptions(prefix="x/") == [
        "x/application/+/device/+/event/up",
        "x/application/+/device/+/event/join",
        "x/application/+/device/+/event/status",
    ]


@settings(max_examples=300, deadline=None)
@given(
    path=st.sampled_from(
        [
            ["object"],
            ["time"],
            ["deviceInfo"],
            ["rxInfo"],
            ["deviceInfo", "devEui"],
            ["deduplicationId"],
            ["object", "x"],
        ]
    ),
    value=json_values,
    event=st.sampled_from(["up", "join", "status"]),
)
def test_parse_never_raises_on_hostile_fields(path: list[str], value: object, event: str) -> None:
    parsed = Parser(units=LINK_UNITS).parse(topic(event), dumps(mutate(example("up"), path, value)))
    check_invariants(parsed, LINK_UNITS)


@settings(max_examples=200, deadline=None)
@given(payload=st.binary(max_size=200) | json_values.map(dumps))
def test_parse_never_raises_on_junk(payload: bytes) -> None:
    parsed = Parser().parse(topic("up"), payload)
    assert parsed.refusals
    check_invariants(parsed, CATALOG_UNITS)
