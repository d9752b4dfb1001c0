from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.formats import FormatReason
from ingest.formats.mapping import MappingFile
from ingest.formats.tts import Parser, subscriptions
from ingest.formats.units import CATALOG_UNITS
from ingest.reasons import Reason
from tests.ingest.formats.hostile import check_invariants, dumps, json_values, mutate

EXAMPLE = json.loads((Path(__file__).parent / "examples" / "tts_up.json").read_text())
TOPIC = "v3/app1@ttn/devices/dev1/up"


def test_documented_uplink_becomes_one_reading() -> None:
    parsed = Parser().parse(TOPIC, json.dumps(EXAMPLE).encode())
    assert parsed.refusals == []
    assert parsed.gateway_id == "app1"
    [reading] = parsed.readings
    assert reading.device_id == "0004a30b001c0530"
    assert reading.metrics == {"temperature_c": -1.5, "pressure_hpa": 1013.2}
    assert reading.ts == datetime(2020, 2, 12, 15, 15, 45, 614000, tzinfo=UTC)


def test_identity_is_the_application_servers_correlation_id() -> None:
    parser = Parser()
    first = parser.parse(TOPIC, json.dumps(EXAMPLE).encode())
    same = mutate(EXAMPLE, ["correlation_ids"], ["as:up:01E0Q1AA6W6PX7VKXN9VA8NCKT"])
    other = mutate(EXAMPLE, ["correlation_ids"], ["as:up:01E0Q1AA6W6PX7VKXN9VA8NCKU"])
    assert parser.parse(TOPIC, json.dumps(same).encode()).identity == first.identity
    assert parser.parse(TOPIC, json.dumps(other).encode()).identity != first.identity


def test_without_correlation_ids_identity_is_f_cnt_and_received_time() -> None:
    parser = Parser()
    bare = mutate(EXAMPLE, ["correlation_ids"], [])
    a = parser.parse(TOPIC, json.dumps(bare).encode()).identity
    b = parser.parse(TOPIC, json.dumps(mutate(bare, ["uplink_message", "f_cnt"], 7855)).encode())
    assert a is not None and a != b.identity
    assert parser.parse(TOPIC, json.dumps(bare).encode()).identity == a


def test_open_source_topic_without_tenant_and_mapping_by_tenant_key() -> None:
    mapping = MappingFile.model_validate(
        {"source": {"app1@ttn": {"gateway": "ttn-app1", "fields": {"temperature_c": "dim_pct"}}}}
    )
    parser = Parser(mapping=mapping)
    tenant = parser.parse(TOPIC, json.dumps(EXAMPLE).encode())
    assert tenant.gateway_id == "ttn-app1"
    plain = parser.parse("v3/app1/devices/dev1/up", json.dumps(EXAMPLE).encode())
    assert plain.gateway_id == "app1"
    # the mapped field, -1.5 for dim_pct, is the batch path's range check to refuse
    assert tenant.readings[0].metrics["dim_pct"] == -1.5


def test_refusals() -> None:
    parser = Parser()
    assert [r.reason for r in parser.parse("v3/app1/devices/dev1/join", b"{}").refusals] == [
        Reason.INVALID_TOPIC
    ]
    other = parser.parse("v3/app2/devices/dev1/up", json.dumps(EXAMPLE).encode())
    assert [r.reason for r in other.refusals] == [Reason.INVALID_MESSAGE]
    undecoded = mutate(EXAMPLE, ["uplink_message", "decoded_payload"], None)
    parsed = parser.parse(TOPIC, json.dumps(undecoded).encode())
    assert [r.reason for r in parsed.refusals] == [FormatReason.UNSUPPORTED]
    assert parsed.readings == []
    listed = mutate(EXAMPLE, ["uplink_message", "decoded_payload"], [1, 2])
    assert [r.reason for r in parser.parse(TOPIC, json.dumps(listed).encode()).refusals] == [
        Reason.INVALID_MESSAGE
    ]


def test_subscriptions() -> None:
    assert subscriptions() == ["v3/+/devices/+/up"]


@settings(max_examples=300, deadline=None)
@given(
    path=st.sampled_from(
        [
            ["uplink_message"],
            ["uplink_message", "decoded_payload"],
            ["received_at"],
            ["end_device_ids", "dev_eui"],
            ["uplink_message", "rx_metadata"],
            ["correlation_ids"],
            ["uplink_message", "f_cnt"],
            ["uplink_message", "decoded_payload", "x"],
        ]
    ),
    value=json_values,
)
def test_parse_never_raises(path: list[str], value: object) -> None:
    check_invariants(Parser().parse(TOPIC, dumps(mutate(EXAMPLE, path, value))), CATALOG_UNITS)


@settings(max_examples=200, deadline=None)
@given(payload=st.binary(max_size=200) | json_values.map(dumps))
def test_parse_never_raises_on_junk(payload: bytes) -> None:
    parsed = Parser().parse(TOPIC, payload)
    assert parsed.refusals
    check_invariants(parsed, CATALOG_UNITS)
