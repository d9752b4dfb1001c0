"""The simulators' encoders and the ingester's parsers agree: readings survive the trip."""

from __future__ import annotations

import pytest

from devices.contract import Reading, Telemetry
from ingest.formats import chirpstack, senml, sparkplug, tts
from ingest.formats.mapping import MappingFile
from simulators.protocols import ChirpStack, SenML, Sparkplug, TheThingsStack, dev_eui

T0 = 1_764_800_000_000
DEVICES = {
    "sl-000001": ["power_w", "lamp_on", "dim_pct"],
    "env-000002": ["temperature_c", "noise_dba"],
}


def telemetry(seq: int) -> Telemetry:
    return Telemetry(
        gateway_id="gw-0007",
        seq=seq,
        sent_at=T0 + seq * 1000 + 5,
        readings=[
            Reading(
                "sl-000001", T0 + seq * 1000, {"power_w": 41.5, "lamp_on": 1.0, "dim_pct": 70.0}
            ),
            Reading("env-000002", T0 + seq * 1000 + 1, {"temperature_c": -3.25, "noise_dba": 61.0}),
        ],
    )


def ms(ts: object) -> int:
    return ts if isinstance(ts, int) else round(ts.timestamp() * 1000)  # type: ignore[attr-defined]


def as_set(readings: list[Reading]) -> set[tuple[str, int, tuple[tuple[str, float], ...]]]:
    return {(r.device_id, ms(r.ts), tuple(sorted(r.metrics.items()))) for r in readings}


def roundtrip(encoder: object, parser: object, seqs: range) -> None:
    for seq in seqs:
        message = telemetry(seq)
        parsed = [parser.parse(t, b, T0 * 1000) for t, b in encoder.encode(message)]  # type: ignore[attr-defined]
        assert all(p.refusals == [] for p in parsed), [p.refusals for p in parsed]
        assert {p.gateway_id for p in parsed} == {"gw-0007"}
        assert as_set([r for p in parsed for r in p.readings]) == as_set(message.readings)


@pytest.mark.parametrize("kind", ["chirpstack", "tts"])
def test_lorawan_uplinks_roundtrip_under_the_encoders_mapping(kind: str) -> None:
    encoder = (ChirpStack if kind == "chirpstack" else TheThingsStack)("gw-0007", list(DEVICES))
    module = chirpstack if kind == "chirpstack" else tts
    parser = module.Parser(mapping=MappingFile.model_validate(encoder.mapping()))
    roundtrip(encoder, parser, range(3))
    first = [parser.parse(t, b).identity for t, b in encoder.encode(telemetry(1))]
    assert first == [parser.parse(t, b).identity for t, b in encoder.encode(telemetry(1))]
    assert set(first).isdisjoint(
        parser.parse(t, b).identity for t, b in encoder.encode(telemetry(2))
    )


def test_sparkplug_births_then_data_across_a_seq_wrap() -> None:
    encoder = Sparkplug("gw-0007", DEVICES)
    parser = sparkplug.Parser(mapping=MappingFile.model_validate(encoder.mapping()))
    for t, b in encoder.birth(T0):
        parsed = parser.parse(t, b, T0 * 1000)
        assert parsed.refusals == [] and parsed.readings == []  # null birth values
        assert parsed.status == "online"
    roundtrip(encoder, parser, range(300))  # 600 DDATA: seq wraps twice, no rebirth asked
    death_topic, will = encoder.death()
    assert parser.parse(death_topic, will).status == "offline"


@pytest.mark.parametrize("binary", [False, True])
def test_senml_packs_roundtrip(binary: bool) -> None:
    roundtrip(SenML("gw-0007", binary=binary), senml.Parser(), range(3))


def test_dev_eui_is_stable_hex() -> None:
    assert dev_eui("sl-000001") == dev_eui("sl-000001") != dev_eui("sl-000002")
    assert len(dev_eui("x")) == 16 and int(dev_eui("x"), 16) >= 0
