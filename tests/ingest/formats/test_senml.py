from __future__ import annotations

import json
from pathlib import Path

import cbor2
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.formats import FormatReason
from ingest.formats.mapping import MappingFile
from ingest.formats.senml import Parser, subscriptions
from ingest.formats.units import CATALOG_UNITS
from ingest.reasons import Reason
from tests.ingest.formats.hostile import check_invariants, deep, dumps, json_values

EXAMPLES = Path(__file__).parent / "examples"
JSON_TOPIC = "city/v1/gateways/gw-7/senml"
CBOR_TOPIC = "city/v1/gateways/gw-7/senml/cbor"
NOW_US = 1_764_800_000_000_000
DEVICE = "urn:dev:ow:10e2073a01080063"
LABELS = {
    "bver": -1,
    "bn": -2,
    "bt": -3,
    "bu": -4,
    "bv": -5,
    "bs": -6,
    "n": 0,
    "u": 1,
    "v": 2,
    "vs": 3,
    "vb": 4,
    "s": 5,
    "t": 6,
    "ut": 7,
    "vd": 8,
}  # RFC 8428 table 4


def example(name: str) -> bytes:
    return (EXAMPLES / f"senml_{name}.json").read_bytes()


def as_cbor(pack: list[dict]) -> bytes:
    return cbor2.dumps([{LABELS[k]: v for k, v in record.items()} for record in pack])


def test_rfc_single_datapoint_device_is_the_name_metric_is_the_unit() -> None:
    parsed = Parser().parse(JSON_TOPIC, example("single"), NOW_US)
    assert parsed.refusals == []
    [reading] = parsed.readings
    assert reading.device_id == DEVICE
    assert reading.metrics == {"temperature_c": 23.1}
    assert reading.ts == NOW_US // 1000  # no time: now


def test_rfc_multiple_datapoints_resolve_base_name_and_names() -> None:
    parsed = Parser().parse(JSON_TOPIC, example("multiple_datapoints"), NOW_US)
    assert parsed.refusals == [] and parsed.gateway_id == "gw-7"
    [reading] = parsed.readings
    assert reading.device_id == DEVICE  # base name without the trailing ':'
    assert reading.metrics == {"voltage_v": 120.1, "current_a": 1.2}


def test_rfc_multiple_measurements_resolve_base_time_and_base_unit() -> None:
    parsed = Parser().parse(JSON_TOPIC, example("multiple_measurements"), NOW_US)
    assert parsed.refusals == []
    by_time = {r.ts: r.metrics for r in parsed.readings}
    t0 = 1_276_020_076_001
    assert by_time[t0] == {"voltage_v": 120.1, "current_a": 1.7}
    assert [by_time[t0 - k * 1000] for k in range(5, 0, -1)] == [
        {"current_a": v} for v in (1.2, 1.3, 1.4, 1.5, 1.6)
    ]
    assert len(parsed.readings) == 6


def test_cbor_pack_with_the_rfcs_integer_labels_parses_like_the_json() -> None:
    pack = json.loads(example("multiple_measurements"))
    from_cbor = Parser().parse(CBOR_TOPIC, as_cbor(pack), NOW_US)
    from_json = Parser().parse(JSON_TOPIC, example("multiple_measurements"), NOW_US)
    assert from_cbor.refusals == []
    assert from_cbor.readings == from_json.readings


def test_units_are_converted_or_refused() -> None:
    pack = [
        {"bn": "env-1/", "bt": 1.7e9, "n": "temperature", "u": "K", "v": 300},
        {"n": "pressure", "u": "Pa", "v": 101325},
        {"n": "humidity", "u": "%RH", "v": 40},
        {"n": "noise", "u": "Cel", "v": 3},
    ]
    parsed = Parser().parse(JSON_TOPIC, json.dumps(pack).encode())
    [reading] = parsed.readings
    assert reading.device_id == "env-1"
    assert reading.metrics["temperature_c"] == 300 - 273.15
    assert reading.metrics["pressure_hpa"] == 1013.25
    assert reading.metrics["humidity_pct"] == 40
    # no catalog metric is named noise_... in a unit Cel converts to
    assert [(r.reason, r.field) for r in parsed.refusals] == [
        (FormatReason.UNMAPPED_FIELD, "record 3")
    ]


def test_a_wrong_unit_for_a_catalog_metric_is_a_bad_unit() -> None:
    pack = [{"bn": "env-1:", "bt": 1.7e9, "n": "temperature_c", "u": "V", "v": 3}]
    parsed = Parser().parse(JSON_TOPIC, json.dumps(pack).encode())
    assert parsed.readings == []
    assert [r.reason for r in parsed.refusals] == [FormatReason.BAD_UNIT]


def test_booleans_sums_strings_and_bad_records() -> None:
    pack = [
        {"bn": "lamp-1:", "bt": 1.7e9, "n": "lamp_on", "vb": True},
        {"n": "energy_wh", "u": "kWh", "s": 2.5},
        {"n": "label", "vs": "north"},
        {"n": "dim_pct", "v": "fifty"},
        {"n": "dim_pct", "v": 50, "x_": 1},
        "not a record",
        {"bt": "yesterday", "n": "dim_pct", "v": 5},
    ]
    parsed = Parser().parse(JSON_TOPIC, json.dumps(pack).encode())
    [reading] = parsed.readings
    assert reading.metrics == {"lamp_on": 1.0, "energy_wh": 2500.0}
    assert [r.reason for r in parsed.refusals] == [
        FormatReason.UNSUPPORTED,
        FormatReason.INVALID_VALUE,
        Reason.INVALID_READING,
        Reason.INVALID_READING,
        Reason.INVALID_READING,
    ]
    assert [r.field for r in parsed.refusals] == [f"record {i}" for i in (2, 3, 4, 5, 6)]


def test_mapping_names_records_and_renames_the_gateway() -> None:
    mapping = MappingFile.model_validate(
        {"source": {"gw-7": {"gateway": "senml-7", "fields": {"lux": "ambient_lux"}}}}
    )
    pack = [{"bn": "lamp-9.", "bt": 1.7e9, "n": "lux", "u": "lx", "v": 12}]
    parsed = Parser(mapping=mapping).parse(JSON_TOPIC, json.dumps(pack).encode())
    assert parsed.gateway_id == "senml-7"
    assert parsed.readings[0].metrics == {"ambient_lux": 12.0}
    assert parsed.readings[0].device_id == "lamp-9"


def test_identity_same_for_a_copy_of_an_absolute_pack_new_for_a_relative_one() -> None:
    parser = Parser()
    absolute = example("multiple_measurements")
    assert (
        parser.parse(JSON_TOPIC, absolute, NOW_US).identity
        == parser.parse(JSON_TOPIC, absolute, NOW_US + 60_000_000).identity
    )
    relative = example("single")
    assert (
        parser.parse(JSON_TOPIC, relative, NOW_US).identity
        != parser.parse(JSON_TOPIC, relative, NOW_US + 60_000_000).identity
    )


def test_relative_time_without_arrival_time_is_refused() -> None:
    parsed = Parser().parse(JSON_TOPIC, example("single"))
    assert parsed.readings == [] and [r.reason for r in parsed.refusals] == [Reason.INVALID_READING]


def test_whole_pack_refusals() -> None:
    parser = Parser()
    cases = [
        (JSON_TOPIC, b"[{", Reason.MALFORMED),
        (CBOR_TOPIC, b"\x9f\x01", Reason.MALFORMED),
        (JSON_TOPIC, b'{"n": "x"}', Reason.INVALID_MESSAGE),
        (JSON_TOPIC, b"[" * 100_000, Reason.MALFORMED),
        (CBOR_TOPIC, b"\x81" * 100_000 + b"\x01", Reason.MALFORMED),
        ("city/v1/gateways/gw-7/senml/xml", b"[]", Reason.INVALID_TOPIC),
        (JSON_TOPIC, deep(100), Reason.INVALID_MESSAGE),
    ]
    for topic, payload, reason in cases:
        parsed = parser.parse(topic, payload, NOW_US)
        assert [r.reason for r in parsed.refusals] == [reason], (topic, payload[:20])


def test_subscriptions() -> None:
    assert subscriptions() == ["city/v1/gateways/+/senml", "city/v1/gateways/+/senml/cbor"]


record_keys = st.sampled_from([*LABELS, "x_", "other"])
records = st.dictionaries(record_keys, json_values, max_size=6)


@settings(max_examples=300, deadline=None)
@given(pack=st.lists(records | json_values, max_size=6), binary=st.booleans())
def test_parse_never_raises(pack: list, binary: bool) -> None:
    if binary:
        payload = cbor2.dumps(
            [
                {LABELS.get(k, k): v for k, v in r.items()} if isinstance(r, dict) else r
                for r in pack
            ]
        )
        parsed = Parser().parse(CBOR_TOPIC, payload, NOW_US)
    else:
        parsed = Parser().parse(JSON_TOPIC, dumps(pack), NOW_US)
    check_invariants(parsed, CATALOG_UNITS)


@settings(max_examples=300, deadline=None)
@given(payload=st.binary(max_size=300), binary=st.booleans())
def test_parse_never_raises_on_junk(payload: bytes, binary: bool) -> None:
    parsed = Parser().parse(CBOR_TOPIC if binary else JSON_TOPIC, payload, NOW_US)
    check_invariants(parsed, CATALOG_UNITS)


def test_a_second_value_for_one_metric_device_and_time_is_refused() -> None:
    pack = [
        {"bn": "env-1:", "bt": 1.7e9, "n": "temperature_c", "v": 3},
        {"n": "temperature", "u": "Cel", "v": 4},
    ]
    parsed = Parser().parse(JSON_TOPIC, json.dumps(pack).encode())
    assert parsed.readings[0].metrics == {"temperature_c": 3.0}
    assert [(r.reason, r.field) for r in parsed.refusals] == [(Reason.INVALID_READING, "record 1")]


def test_hostile_values_bad_utf8_nan_and_huge() -> None:
    parser = Parser()
    bad_utf8 = b'[{"bn": "\xff\xfe:", "n": "dim_pct", "v": 1}]'
    assert [r.reason for r in parser.parse(JSON_TOPIC, bad_utf8, NOW_US).refusals] == [
        Reason.MALFORMED
    ]
    assert [r.reason for r in parser.parse(JSON_TOPIC, b'[{"v": NaN}]', NOW_US).refusals] == [
        Reason.MALFORMED
    ]  # not JSON
    nan = as_cbor(
        [
            {"bn": "env-1:", "n": "temperature_c", "v": float("nan")},
            {"n": "humidity_pct", "v": float("inf")},
            {"n": "noise_dba", "v": 10**400},
        ]
    )
    parsed = parser.parse(CBOR_TOPIC, nan, NOW_US)
    assert parsed.readings == []
    assert [r.reason for r in parsed.refusals] == [Reason.NOT_FINITE] * 3
    big = b"[" + b",".join([b'{"n": "dim_pct", "v": 1}'] * 20_000) + b"]"
    assert [r.reason for r in parser.parse(JSON_TOPIC, big, NOW_US).refusals] == [
        Reason.TOO_MANY_READINGS
    ]


plain_records = st.fixed_dictionaries(
    {"n": st.sampled_from(["temperature", "temperature_c", "current", "noise", ""])},
    optional={
        "u": st.sampled_from(["Cel", "K", "A", "V", "lx"]) | st.none(),
        "v": st.integers(-(2**70), 2**70) | st.floats() | st.booleans() | st.none(),
        "t": st.integers(-100, 100) | st.floats(-1e9, 2e9),
    },
)


@settings(max_examples=300, deadline=None)
@given(
    head=st.fixed_dictionaries(
        {
            "bn": st.sampled_from(["env-1:", "", "a b:"]),
            "bt": st.floats(0, 2e9),
            "bv": st.floats(-10, 10),
        }
    ),
    records=st.lists(plain_records, max_size=8),
    now=st.none() | st.just(NOW_US),
)
def test_the_plain_record_fast_path_parses_as_the_general_path(
    head: dict, records: list[dict], now: int | None
) -> None:
    import ingest.formats.senml as module

    payload = dumps([head, *records])
    fast = Parser().parse(JSON_TOPIC, payload, now)
    plain, module._PLAIN = module._PLAIN, frozenset({"-"})
    try:
        general = Parser().parse(JSON_TOPIC, payload, now)
    finally:
        module._PLAIN = plain
    assert fast.readings == general.readings
    assert fast.refusals == general.refusals
    assert fast.identity == general.identity


def test_a_nameless_record_is_the_generic_metric_of_its_unit_or_refused() -> None:
    units = {**CATALOG_UNITS, "air_temperature_c": "°C", "bin_temperature_c": "°C"}
    parsed = Parser(units=units).parse(JSON_TOPIC, example("single"), NOW_US)
    assert parsed.readings[0].metrics == {"temperature_c": 23.1}
    pct = [{"n": DEVICE, "u": "%", "v": 5}]  # dim_pct, humidity_pct, occupancy_pct...
    refused = Parser(units=units).parse(JSON_TOPIC, json.dumps(pct).encode(), NOW_US)
    assert [r.reason for r in refused.refusals] == [FormatReason.UNMAPPED_FIELD]


def test_one_value_field_per_record_and_a_sum_beside_a_value_is_refused() -> None:
    pack = [
        {"bn": "m-1:", "bt": 1.7e9, "n": "energy_wh", "v": 5, "s": 10},
        {"n": "dim_pct", "v": 5, "vb": True},
    ]
    parsed = Parser().parse(JSON_TOPIC, json.dumps(pack).encode())
    assert parsed.readings[0].metrics == {"energy_wh": 5.0}
    assert [(r.reason, r.field) for r in parsed.refusals] == [
        (FormatReason.UNSUPPORTED, "record 0"),
        (Reason.INVALID_READING, "record 1"),
    ]
