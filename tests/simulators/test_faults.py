"""Injected faults: all in the ground truth, each visible in its interval and nowhere else."""

from __future__ import annotations

import io
import json
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from devices.catalog import BY_NAME
from simulators.city import build_city
from simulators.faults import (
    FAULT_KINDS,
    GATEWAY_FAULTS,
    SPIKE,
    Fault,
    read_ground_truth,
    write_ground_truth,
)
from simulators.generator import CityGenerator, Event, Message, StatusChange

START = datetime(2025, 11, 17, tzinfo=UTC)  # a Monday, in Chicago too from 06:00 UTC
END = START + timedelta(days=2)
INTERVAL = 300.0
CITY = build_city(seed=2, streetlights=60, environment=30, traffic=20, gateways=6)
KEYS = ["fault", "gateway_id", "device_id", "metrics", "start", "end"]

Readings = dict[tuple[str, int], dict[str, float]]


def _run(seed: int = 7, rate: float = 2.0) -> tuple[list[Event], list[Fault]]:
    gen = CityGenerator(CITY, start=START, end=END, interval_s=INTERVAL, seed=seed, fault_rate=rate)
    return list(gen.events()), gen.faults


@pytest.fixture(scope="module")
def faulty() -> tuple[list[Event], list[Fault]]:
    return _run()


@pytest.fixture(scope="module")
def healthy() -> list[Event]:
    return _run(rate=0.0)[0]


def _readings(events: list[Event]) -> Readings:
    """(device, true time) → metrics; a skewed clock's readings put back at their time."""
    out: Readings = {}
    for m in events:
        if isinstance(m, Message):
            for r in m.readings:
                assert isinstance(r.ts, int)
                out[r.device_id, m.taken_at] = r.metrics
    return out


def _ticks(f: Fault) -> list[int]:
    t0 = int(START.timestamp() * 1000)
    step = int(INTERVAL * 1000)
    return [t for t in range(f.start_ms, f.end_ms, step) if (t - t0) % step == 0]


def test_every_kind_is_injected_and_written_to_the_ground_truth(
    faulty: tuple[list[Event], list[Fault]],
) -> None:
    _, faults = faulty
    assert set(Counter(f.fault for f in faults)) == set(FAULT_KINDS)
    out = io.StringIO()
    assert write_ground_truth(faults, out) == len(faults)
    lines = out.getvalue().splitlines()
    for line, f in zip(lines, faults, strict=True):
        obj = json.loads(line)
        assert list(obj) == KEYS
        assert obj["start"].endswith("Z") and obj["end"].endswith("Z")
        assert (obj["device_id"] is None) == (obj["fault"] in GATEWAY_FAULTS)
        assert Fault.from_json(obj) == f
        assert START <= f.start < f.end <= END


def test_ground_truth_round_trips_through_a_file(
    faulty: tuple[list[Event], list[Fault]], tmp_path: object
) -> None:
    from pathlib import Path

    _, faults = faulty
    p = Path(str(tmp_path)) / "truth.jsonl"
    with p.open("w") as out:
        write_ground_truth(faults, out)
    assert read_ground_truth(p) == faults


def test_events_come_in_time_order(faulty: tuple[list[Event], list[Fault]]) -> None:
    times = [e.published_at if isinstance(e, Message) else e.at for e in faulty[0]]
    assert times == sorted(times)


def test_every_fault_is_visible_in_its_interval(
    faulty: tuple[list[Event], list[Fault]], healthy: list[Event]
) -> None:
    events, faults = faulty
    bad, good = _readings(events), _readings(healthy)
    for f in faults:
        ticks = _ticks(f)
        assert ticks, f
        if f.fault in GATEWAY_FAULTS:
            _gateway_visible(f, ticks, events)
            continue
        assert f.device_id is not None
        did = f.device_id
        if f.fault == "dropout":
            assert all((did, t) not in bad and (did, t) in good for t in ticks), f
            continue
        now = [bad[did, t] for t in ticks]
        was = [good[did, t] for t in ticks]
        if f.fault == "lamp_out":
            assert all(b["lamp_on"] == 0 and b["power_w"] < 5 for b in now), f
            assert all(h["lamp_on"] == 1 for h in was), f
        elif f.fault == "day_burner":
            assert all(b["lamp_on"] == 1 and b["power_w"] > 30 for b in now), f
            assert all(h["lamp_on"] == 0 and h["ambient_lux"] > 1000 for h in was), f
        elif f.fault == "flicker":
            assert {b["lamp_on"] for b in now} == {0.0, 1.0}, f
            assert all(h["lamp_on"] == 1 for h in was), f
        elif f.fault == "power_out_of_band":
            assert all(h["lamp_on"] == 1 for h in was), f
            ratios = [b["power_w"] / h["power_w"] for b, h in zip(now, was, strict=True)]
            assert all(abs(r - 1) > 0.3 for r in ratios), f
        elif f.fault == "stuck":
            (m,) = f.metrics
            assert len({b[m] for b in now}) == 1 < len({h[m] for h in was}), f
        elif f.fault == "drift":
            (m,) = f.metrics
            gaps = [abs(b[m] - h[m]) for b, h in zip(now, was, strict=True)]
            assert gaps[-1] > 3 * max(gaps[0], 0.05) and gaps[-1] > 0.5 * _scale(m), f
        elif f.fault == "spike":
            (m,) = f.metrics
            assert all(abs(b[m] - h[m]) > 0.5 * SPIKE[m] for b, h in zip(now, was, strict=True)), f
        elif f.fault == "out_of_range":
            (m,) = f.metrics
            assert all(not BY_NAME[m].low <= b[m] <= BY_NAME[m].high for b in now), f
        elif f.fault == "incident":
            for b, h in zip(now, was, strict=True):
                assert b["speed_kmh"] < 0.5 * h["speed_kmh"], f
                assert b["occupancy_pct"] > h["occupancy_pct"] + 20, f
        elif f.fault == "dead_detector":
            assert all(set(b.values()) == {0.0} for b in now), f
            assert all(h["speed_kmh"] > 0 for h in was), f
        else:
            raise AssertionError(f"no check for {f.fault}")


def _scale(metric: str) -> float:
    from simulators.faults import DRIFT

    return DRIFT[metric]


def _gateway_visible(f: Fault, ticks: list[int], events: list[Event]) -> None:
    gid = f.gateway_id
    mine = [m for m in events if isinstance(m, Message) and m.gateway_id == gid]
    carrying = [m for m in mine if m.readings and f.covers(m.taken_at)]
    status = [e for e in events if isinstance(e, StatusChange) and e.gateway_id == gid]
    if f.fault in ("gateway_offline", "backlog_replay"):
        assert StatusChange(gid, f.start_ms, False) in status, f
        assert StatusChange(gid, f.end_ms, True) in status, f
    if f.fault == "gateway_offline":
        assert not carrying, f
    elif f.fault == "backlog_replay":
        assert [m.readings[0].ts for m in carrying] == ticks, f
        assert all(m.published_at == f.end_ms for m in carrying), f
        seqs = [m.seq for m in carrying]
        assert seqs == sorted(seqs), f
    elif f.fault == "late_delivery":
        assert len(carrying) == len(ticks), f
        assert all(m.sent_at - m.readings[0].ts >= 60_000 for m in carrying), f
    elif f.fault == "out_of_order":
        seqs = [m.seq for m in carrying]
        assert len(seqs) == len(ticks) and seqs != sorted(seqs), f
    elif f.fault == "duplicate":
        counts = Counter(m.seq for m in carrying)
        assert len(counts) == len(ticks) and set(counts.values()) == {2}, f
    elif f.fault == "clock_skew":
        skews = {r.ts - m.taken_at for m in carrying for r in m.readings}
        skews |= {m.sent_at - m.published_at for m in carrying}
        assert len(skews) == 1 and skews != {0} and len(carrying) == len(ticks), f


def test_nothing_changes_outside_the_faults(
    faulty: tuple[list[Event], list[Fault]], healthy: list[Event]
) -> None:
    """Every difference from the healthy run is explained by a fault of the ground truth."""
    events, faults = faulty
    bad, good = _readings(events), _readings(healthy)
    by_device: dict[str, list[Fault]] = defaultdict(list)
    offline: dict[str, list[Fault]] = defaultdict(list)
    for f in faults:
        if f.device_id is not None:
            by_device[f.device_id].append(f)
        elif f.fault == "gateway_offline":
            offline[f.gateway_id].append(f)
    gateway_of = {d.device_id: g.gateway_id for g in CITY for d in g.devices}
    for (did, t), h in good.items():
        covering = [f for f in by_device[did] if f.covers(t)]
        if (did, t) not in bad:
            gone = [f for f in offline[gateway_of[did]] if f.covers(t)]
            assert gone or [f for f in covering if f.fault == "dropout"], (did, t)
            continue
        b = bad[did, t]
        for m, v in h.items():
            if m == "energy_wh" or b[m] == v:
                continue
            assert any(not f.metrics or m in f.metrics for f in covering), (did, t, m, v, b[m])
    assert set(bad) <= set(good)
    skewed = [f for f in faults if f.fault == "clock_skew"]
    for m in events:
        if isinstance(m, Message) and any(r.ts != m.taken_at for r in m.readings):
            assert any(f.gateway_id == m.gateway_id and f.covers(m.taken_at) for f in skewed)


def test_the_same_seed_gives_the_same_stream_and_faults() -> None:
    a, fa = _run(seed=11, rate=1.0)
    b, fb = _run(seed=11, rate=1.0)
    assert a == b and fa == fb
    assert [f.params for f in fa] == [f.params for f in fb]
    c, fc = _run(seed=12, rate=1.0)
    assert fc != fa
    assert _readings(c) != _readings(a)


def test_explicit_faults_are_injected_as_given() -> None:
    lamp = next(d for g in CITY for d in g.devices if d.device_id.startswith("sl-"))
    gid = next(g.gateway_id for g in CITY if lamp in g.devices)
    night = datetime(2025, 11, 17, 4, tzinfo=UTC)  # 22:00 in Chicago
    f = Fault("lamp_out", gid, lamp.device_id, ("power_w",), night, night + timedelta(hours=1))
    gen = CityGenerator(
        CITY, start=START, end=START + timedelta(hours=6), interval_s=INTERVAL, faults=[f]
    )
    readings = _readings(list(gen.events()))
    t = int(night.timestamp() * 1000)
    assert readings[lamp.device_id, t]["lamp_on"] == 0
    assert readings[lamp.device_id, t - 300_000]["lamp_on"] == 1
    assert readings[lamp.device_id, t + 3_600_000]["lamp_on"] == 1
    assert gen.faults == [f]
