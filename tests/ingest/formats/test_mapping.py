from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from ingest.formats import FormatReason
from ingest.formats.mapping import MappingFile, Resolver, SourceMapping, load_mapping
from ingest.formats.router import Router
from ingest.formats.units import CATALOG_UNITS, conversion
from ingest.reasons import Reason

EXAMPLE = Path(__file__).parent / "examples" / "mapping.toml"
APP = "17c82e96-be03-4f38-aef3-f83d48582d97"


def test_the_documented_mapping_file_loads_and_maps() -> None:
    mapping = load_mapping(EXAMPLE)
    source = mapping.source[APP]
    assert source.gateway == "parking-north" and source.devices == {"0101010101010101": "env-0001"}
    resolver = Resolver(source, CATALOG_UNITS)
    metrics, refusals = resolver.metrics(
        {"temperature": 20, "temp_f": 32, "power_kw": 1.5, "status_text": "ok", "rain": 1}
    )
    assert metrics == {"temperature_c": 20.0, "power_w": 1500.0}
    assert [(r.reason, r.field) for r in refusals] == [
        (Reason.INVALID_READING, "temp_f"),  # a second value for temperature_c
        (FormatReason.UNMAPPED_FIELD, "rain"),
    ]
    assert Resolver(source, CATALOG_UNITS).metrics({"temp_f": 212})[0] == {"temperature_c": 100}


def test_a_mapping_with_unknown_keys_is_refused_at_load() -> None:
    with pytest.raises(pydantic.ValidationError):
        MappingFile.model_validate({"source": {"x": {"gatway": "typo"}}})


def test_nested_fields_are_paths_and_depth_and_size_are_bounded() -> None:
    resolver = Resolver(SourceMapping(fields={"a.b": "dim_pct"}), CATALOG_UNITS)
    assert resolver.metrics({"a": {"b": 5}})[0] == {"dim_pct": 5.0}
    deep: dict = {}
    node = deep
    for _ in range(20):
        node["a"] = {}
        node = node["a"]
    node["a"] = 1
    metrics, refusals = resolver.metrics(deep)
    assert metrics == {} and [r.reason for r in refusals] == [FormatReason.UNMAPPED_FIELD]
    wide = {f"f{i}": i for i in range(1000)}
    assert [r.reason for r in resolver.metrics(wide)[1]] == [Reason.INVALID_MESSAGE]


def test_a_rule_in_a_unit_the_catalog_metric_cannot_take_is_a_bad_unit() -> None:
    source = SourceMapping(fields={"x": {"metric": "power_w", "unit": "°C"}})  # type: ignore[dict-item]
    metrics, refusals = Resolver(source, CATALOG_UNITS).metrics({"x": 1})
    assert metrics == {} and [r.reason for r in refusals] == [FormatReason.BAD_UNIT]


def test_conversions() -> None:
    assert conversion("Cel", "°C") == (1.0, 0.0)
    scale, offset = conversion("°F", "°C") or (0, 0)
    assert round(212 * scale + offset, 9) == 100
    assert conversion("V", "°C") is None


def test_router_picks_the_parser_by_topic_and_lists_the_filters() -> None:
    router = Router(["chirpstack", "senml", "sparkplug", "tts"], prefix="t/")
    assert "t/spBv1.0/+/NDATA/+" in router.subscriptions()
    assert "t/city/v1/gateways/+/senml/cbor" in router.subscriptions()
    picks = {
        "t/application/a/device/b/event/up": "chirpstack",
        "t/v3/app@ttn/devices/d/up": "tts",
        "t/spBv1.0/g/NDATA/e": "sparkplug",
        "t/city/v1/gateways/gw/senml": "senml",
    }
    for topic, module in picks.items():
        parser = router.parser_for(topic)
        assert parser is not None and type(parser).__module__ == f"ingest.formats.{module}"
    assert router.parser_for("t/city/v1/gateways/gw/telemetry") is None
    assert Router(["senml"]).parser_for("application/a/device/b/event/up") is None
    with pytest.raises(ValueError, match="unknown payload formats"):
        Router(["opcua"])


def test_conversions_of_the_newer_catalogs_units() -> None:
    for unit, catalog_unit, value, expected in [
        ("W", "kW", 1500, 1.5), ("Wh", "kWh", 250, 0.25), ("km/h", "m/s", 36, 10),
        ("mm", "m", 250, 0.25), ("m3/s", "m³/s", 2, 2), ("W/m2", "W/m²", 3, 3),
    ]:  # fmt: skip
        scale, offset = conversion(unit, catalog_unit) or (float("nan"), 0)
        assert round(value * scale + offset, 9) == expected, unit
