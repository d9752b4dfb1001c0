"""The catalog document: the shipped one, and what a document may not say."""

from __future__ import annotations

import pytest

from devices.catalog import BY_ID, DEFAULT, METRICS, Catalog, Kind, metrics_of, shipped_document
from devices.catalog_model import InvalidCatalog, from_json, parse

# The catalog of contract v1 before it became data: ids, names, kinds, units and ranges
# must stay exactly these (an id never changes meaning).
V1 = [
    (1, "power_w", "streetlight", "W", "WTT", 0, 2000),
    (2, "energy_wh", "streetlight", "Wh", "WHR", 0, 1e10),
    (3, "lamp_on", "streetlight", "1", "C62", 0, 1),
    (4, "dim_pct", "streetlight", "%", "P1", 0, 100),
    (5, "voltage_v", "streetlight", "V", "VLT", 0, 500),
    (6, "current_a", "streetlight", "A", "AMP", 0, 20),
    (7, "ambient_lux", "streetlight", "lx", "LUX", 0, 200000),
    (8, "temperature_c", "environment", "°C", "CEL", -60, 70),
    (9, "humidity_pct", "environment", "%", "P1", 0, 100),
    (10, "pressure_hpa", "environment", "hPa", "A97", 800, 1100),
    (11, "pm2_5_ugm3", "environment", "µg/m³", "GQ", 0, 1000),
    (12, "pm10_ugm3", "environment", "µg/m³", "GQ", 0, 2000),
    (13, "no2_ppb", "environment", "ppb", "61", 0, 2000),
    (14, "o3_ppb", "environment", "ppb", "61", 0, 1000),
    (15, "noise_dba", "environment", "dB(A)", "2N", 0, 160),
    (16, "speed_kmh", "traffic", "km/h", "KMH", 0, 300),
    (17, "volume_veh", "traffic", "1", "C62", 0, 100000),
    (18, "occupancy_pct", "traffic", "%", "P1", 0, 100),
]


def test_the_eighteen_metrics_of_v1_are_unchanged() -> None:
    shipped = [(m.id, m.name, m.kind, m.unit, m.unit_code, m.low, m.high) for m in METRICS]
    assert shipped[:18] == V1


def test_the_shipped_catalog_has_at_least_nine_kinds_each_with_a_metric() -> None:
    kinds = list(Kind)
    assert kinds[:3] == [Kind.STREETLIGHT, Kind.ENVIRONMENT, Kind.TRAFFIC]
    assert len(kinds) >= 9
    assert all(metrics_of(k) for k in kinds)
    assert {"parking_bay", "waste_bin", "water_level", "weather_station", "ev_charger"} <= set(
        kinds
    )
    assert DEFAULT.kind_specs["people_counter"].counts_people
    assert not DEFAULT.kind_specs["streetlight"].counts_people
    assert [m.id for m in METRICS] == list(range(1, len(METRICS) + 1))


def test_counter_and_daily_rhythm_match_what_the_detectors_used() -> None:
    from ingest.detect import SEASONAL

    assert {m.id for m in METRICS[:18] if m.daily_rhythm} == set(SEASONAL)
    assert [m.name for m in METRICS if m.counter] == ["energy_wh", "charge_energy_kwh"]


def test_kind_is_an_open_set_of_interned_strings() -> None:
    parking = Kind("parking_bay")
    assert parking is Kind("parking_bay") and parking == "parking_bay"
    assert Kind("streetlight") is Kind.STREETLIGHT and Kind.STREETLIGHT.value == "streetlight"
    assert type(Kind.TRAFFIC.value) is str
    assert {Kind.TRAFFIC: 1}["traffic"] == 1
    assert Kind("ferry_dock") == "ferry_dock"  # a kind only a city's own catalog knows
    assert BY_ID[19].kind is parking


def test_the_document_round_trips_through_toml_and_json() -> None:
    doc = shipped_document()
    assert parse(doc.to_toml()) == doc
    assert from_json(doc.model_dump(mode="json")) == doc


def _doc(**changes: object) -> dict[str, object]:
    data = shipped_document().model_dump(mode="json")
    data.update(changes)
    return data


def _with_metric(**fields: object) -> dict[str, object]:
    data = shipped_document().model_dump(mode="json")
    metric = dict(data["metrics"][0]) | fields  # type: ignore[index]
    data["metrics"] = [*data["metrics"], metric]  # type: ignore[misc]
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_with_metric(), "two entries share the metric id 1"),
        (_with_metric(id=63), "two entries share the metric name 'power_w'"),
        (_with_metric(id=63, name="x_w", kind="ferry"), "kind 'ferry' is not among the kinds"),
        (_with_metric(id=63, name="x_w", low=5, high=5), "low (5.0) must be below high"),
        (_with_metric(id=63, name="x_w", unit_code="watts"), "metrics.33.unit_code"),
        (_with_metric(id=0, name="x_w"), "metrics.33.id"),
        (_with_metric(id=64, name="x_w"), "metrics.33.id"),  # beyond the 64 series slots
        (_with_metric(id=63, name="X W"), "metrics.33.name"),
        (_with_metric(id=63, name="x_w", colour="red"), "metrics.33.colour"),
        (_doc(format=2), "format 2 is not supported"),
        (_doc(kinds=[]), "kinds"),
    ],
)
def test_a_bad_document_is_refused_with_what_is_wrong(data: object, message: str) -> None:
    with pytest.raises(InvalidCatalog) as caught:
        from_json(data)
    assert message in str(caught.value)


def test_toml_that_is_not_toml_is_refused() -> None:
    with pytest.raises(InvalidCatalog, match="not TOML"):
        parse("[[kinds]\nid = ")


def test_a_catalog_derives_its_lookups_from_the_document() -> None:
    text = shipped_document().to_toml() + (
        '\n[[kinds]]\nid = "ferry_dock"\ndescription = "a pier"\nfiware = "Device"\n'
        'grid_deg = 0.01\n\n[[metrics]]\nid = 50\nname = "passengers"\nkind = "ferry_dock"\n'
        'unit = "1"\nunit_code = "C62"\nlow = 0\nhigh = 5000\nfiware = "Device.value"\n'
        'description = "people on board"\npublic = true\n'
    )
    catalog = Catalog(parse(text), version=7)
    assert catalog.version == 7
    assert catalog.by_name["passengers"].kind is Kind("ferry_dock")
    assert catalog.metrics_of("ferry_dock") == (catalog.by_id[50],)
    assert catalog.by_id[50] in catalog.public_metrics()
    assert catalog.by_id[5] not in catalog.public_metrics()
