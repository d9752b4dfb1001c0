"""The seasonal baseline: the rush and dusk are usual at their hour; drift is found."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from processing.detectors import Deviation
from processing.seasonal import Seasonal
from simulators.city import build_city
from simulators.models import CITY_TZ, DeviceState, environment, streetlight, traffic

START = datetime(2025, 11, 17, tzinfo=CITY_TZ)  # a Monday, local midnight
STEP = timedelta(minutes=5)


def _series(model, days: int, name: str) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def,type-arg]
    kind = {"streetlight": (1, 0, 0), "traffic": (0, 0, 1), "environment": (0, 1, 0)}[
        model.__name__
    ]
    device = build_city(streetlights=kind[0], environment=kind[1], traffic=kind[2], gateways=1)
    rng, state = np.random.default_rng(5), DeviceState()
    whens = [START + i * STEP for i in range(days * 288)]
    values = [model(device[0].devices[0], w, state, rng, 300)[name] for w in whens]
    time = np.array([int(w.timestamp()) * 1_000_000 for w in whens], dtype=np.int64)
    return time, np.array(values)


def _offset() -> int:
    offset = START.utcoffset()
    assert offset is not None
    return int(offset.total_seconds())


def test_the_rush_is_usual_at_its_hour_but_not_at_three_in_the_morning() -> None:
    time, occupancy = _series(traffic, 5, "occupancy_pct")
    series = np.zeros(len(time), dtype=np.int64)
    usual, drift = Seasonal(utc_offset_s=_offset()).update(series, time, occupancy)
    assert (usual[: 2 * 288] == 0).all()  # warm-up: a day before, and 24 values at that hour
    after = slice(2 * 288, None)
    assert usual[after].max() < 0.5 and drift[after].max() < 0.5
    # the same stream with the morning rush's occupancy at 3 a.m. on the last day
    night = 4 * 288 + 36  # 03:00 on Friday
    moved = occupancy.copy()
    moved[night : night + 3] = occupancy[4 * 288 + 96]  # 08:00's level
    usual, _ = Seasonal(utc_offset_s=_offset()).update(series, time, moved)
    assert (usual[night : night + 3] > 0.9).all()


def test_dawn_is_usual_at_its_hour_though_the_recent_level_calls_it_an_anomaly() -> None:
    time, lux = _series(streetlight, 5, "ambient_lux")
    series = np.zeros(len(time), dtype=np.int64)
    recent = Deviation().update(series, time, lux)
    usual, drift = Seasonal(utc_offset_s=_offset()).update(series, time, lux)
    after = slice(288, None)
    assert recent[after].max() >= 0.5  # why the baseline exists
    assert usual[after].max() < 0.5 and drift[after].max() < 0.5


def test_a_slow_drift_scores_and_a_healthy_temperature_does_not() -> None:
    time, temperature = _series(environment, 5, "temperature_c")
    series = np.zeros(len(time), dtype=np.int64)
    _, drift = Seasonal(utc_offset_s=_offset()).update(series, time, temperature)
    assert drift.max() < 0.5
    drifted = temperature.copy()
    start = 3 * 288  # Thursday (a weekend would have no baseline yet)
    drifted[start:] += np.linspace(0, 4.0, len(drifted) - start)  # +4 °C over two days
    _, drift = Seasonal(utc_offset_s=_offset()).update(series, time, drifted)
    assert drift[start : start + 12].max() < 0.5  # not at once: it is slow
    assert (drift[-100:] > 0.9).all()


def test_series_are_independent_and_state_is_compact() -> None:
    time, occupancy = _series(traffic, 3, "occupancy_pct")
    s = Seasonal(utc_offset_s=_offset())
    ids = np.r_[np.full(len(time), 7), np.full(len(time), 70_000)].astype(np.int64)
    order = np.argsort(np.r_[time, time], kind="stable")
    both, _ = s.update(ids[order], np.r_[time, time][order], np.r_[occupancy, occupancy][order])
    alone, _ = Seasonal(utc_offset_s=_offset()).update(
        np.zeros(len(time), np.int64), time, occupancy
    )
    np.testing.assert_array_equal(both[ids[order] == 7], alone)
    assert s.series == 2
