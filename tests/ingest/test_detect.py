"""Detection, as the live ingester runs it, on the simulators' city with injected faults."""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from typing import Any

import numpy as np
import pytest

from bench.quality import START, City, city_of, evaluate
from devices.catalog import BY_NAME
from devices.columns import ValueColumns
from ingest.detect import Detection
from processing.state import pack, unpack
from simulators.city import build_city
from simulators.faults import DEVICE_FAULTS, Fault
from simulators.generator import CityGenerator

SIZE = (20, 10, 10, 2)  # streetlights, environment, traffic, gateways
ANOMALIES = sorted({f for kinds in DEVICE_FAULTS.values() for f in kinds} | {"gateway_offline"})


@cache
def _faulty() -> tuple[dict[str, dict[str, float]], Any]:
    offline = Fault(
        "gateway_offline", "gw-0001", None, (),
        START + timedelta(days=2, hours=13), START + timedelta(days=2, hours=14),
    )  # fmt: skip
    table, faults, _, _ = evaluate(
        7, days=4, interval_s=60, fault_rate=1.0, city_size=SIZE, warmup_days=2,
        faults=[offline],
    )  # fmt: skip
    return table, faults


@pytest.mark.parametrize("fault", ANOMALIES)
def test_each_fault_kind_is_found(fault: str) -> None:
    table, _ = _faulty()
    row = table[fault]
    if row["faults"] == 0:  # the draw placed none after the warm-up
        pytest.fail(f"seed 7 injected no {fault} after the warm-up: choose another seed")
    assert row["found"] / row["faults"] >= 0.7, row


def test_episodes_are_mostly_about_faults() -> None:
    table, _ = _faulty()
    overall = table["overall"]
    assert overall["true"] / overall["episodes"] >= 0.9, overall
    assert overall["found"] / overall["faults"] >= 0.9, overall


def test_a_healthy_city_raises_next_to_nothing() -> None:
    _, faults, episodes, _ = evaluate(
        8, days=3, interval_s=60, fault_rate=0.0, city_size=(10, 6, 6, 2), warmup_days=2
    )
    assert faults == []
    late = [e for e in episodes if e.start >= (START + timedelta(days=2)).timestamp() * 1e6]
    # about 200,000 values in the day scored: at most a few episodes
    assert len(late) <= 4, [(e.detector, e.device, e.metric) for e in late]


def _stream(seed: int) -> tuple[ValueColumns, np.ndarray, City]:  # type: ignore[type-arg]
    gateways = build_city(seed=seed, streetlights=2, environment=2, traffic=2, gateways=1)
    city = city_of(gateways)
    gen = CityGenerator(gateways, start=START, end=START + timedelta(days=3), interval_s=300)
    rows = [
        (r.ts * 1000, city.device_key[r.device_id], name, x, i)
        for i, (m, r) in enumerate((m, r) for m in gen.messages() for r in m.readings)
        for name, x in r.metrics.items()
    ]
    t, d, n, x, i = zip(*rows, strict=True)
    v = ValueColumns(
        np.array(t, np.int64), np.array(d, np.int32),
        np.array([BY_NAME[k].id for k in n], np.int16), np.array(x, np.float64),
        np.zeros(len(t), np.int32), np.array(i, np.int32),
    )  # fmt: skip
    return v, np.ones(len(t), np.int32), city


def test_a_restored_state_scores_as_the_original_would() -> None:
    v, gateway, _ = _stream(23)
    half = int(np.searchsorted(v.time_us, v.time_us[0] + 2 * 86_400_000_000))
    first, second = np.arange(len(v)) < half, np.arange(len(v)) >= half
    original = Detection(timezone="America/Chicago")
    original.observe(v.take(first), gateway=gateway[first])
    restored = Detection(timezone="America/Chicago")
    assert restored.load(unpack(pack(original.state())))
    assert original.state().keys() == restored.state().keys()
    second[-50:] = False
    second[-60:-55] = True
    spike = v.take(second)
    spike.value[-1] = spike.value[-1] + 500.0  # something to report
    a = original.observe(spike, gateway=gateway[second])
    b = restored.observe(spike, gateway=gateway[second])
    assert a == b
    now = int(v.time_us[-1]) + 3_600_000_000  # an hour of silence: the gateway drops out
    a, b = original.silence(now), restored.silence(now)
    assert a == b and {c.detector for c in a} == {"gateway_silent"}


def test_a_state_of_an_older_layout_is_discarded_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    v, gateway, _ = _stream(23)
    day = int(np.searchsorted(v.time_us, v.time_us[0] + 86_400_000_000))
    warm = Detection(timezone="America/Chicago")
    warm.observe(v.take(np.arange(len(v)) < day), gateway=gateway[:day])
    old = {k: a for k, a in warm.state().items() if k not in ("_layout", "_slot_of", "_series_of")}
    restored = Detection(timezone="America/Chicago")
    with caplog.at_level("WARNING", logger="ingest.detect"):
        assert not restored.load(old)
    assert "discarded" in caplog.text
    fresh = Detection(timezone="America/Chicago")
    assert {k: a.tolist() for k, a in restored.state().items()} == {
        k: a.tolist() for k, a in fresh.state().items()
    }
