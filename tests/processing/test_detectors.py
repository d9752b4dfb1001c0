"""Detectors find their faults, stay quiet on healthy data, and never look ahead."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from processing.detectors import Combined, Deviation, Flatline

N = 4000


def _one(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[type-arg]
    return np.zeros(len(values), dtype=np.int64), np.arange(len(values), dtype=np.int64)


def test_spikes_score_high_and_healthy_noise_low() -> None:
    rng = np.random.default_rng(1)
    v = 20 + rng.normal(0, 1, N)
    spikes = rng.choice(np.arange(200, N), 25, replace=False)
    v[spikes] += rng.choice([-1, 1], 25) * rng.uniform(10, 20, 25)
    scores = Deviation().update(*_one(v), v)
    healthy = np.setdiff1d(np.arange(200, N), spikes)
    assert (scores[spikes] >= 0.9).mean() >= 0.9
    assert (scores[healthy] >= 0.5).mean() < 0.002


def test_one_threshold_fits_a_quantised_and_a_noisy_series() -> None:
    rng = np.random.default_rng(2)
    power = np.where(rng.random(N) < 0.5, 41.2, 41.3)  # a lamp's power, 0.1 W steps
    pm25 = np.abs(12 + rng.normal(0, 4, N))
    series = np.r_[np.zeros(N), np.ones(N)].astype(np.int64)
    values = np.r_[power, pm25]
    scores = Deviation().update(series, np.r_[np.arange(N), np.arange(N)], values)
    assert (scores[200:N] >= 0.5).mean() == 0  # 0.1 W steps are not anomalies
    assert (scores[N + 200 :] >= 0.5).mean() < 0.005
    values[3000] = 20.0  # the lamp's power halves: that one is
    assert Deviation().update(series, np.r_[np.arange(N), np.arange(N)], values)[3000] > 0.99


def test_no_score_before_warm_up() -> None:
    v = np.r_[np.ones(10), 1000.0]
    assert Deviation(warmup=30).update(*_one(v), v).max() == 0.0


def test_a_stuck_sensor_is_found_and_a_constant_one_is_not() -> None:
    rng = np.random.default_rng(3)
    v = 15 + rng.normal(0, 0.5, N)
    v[2000:2200] = v[2000]
    scores = Flatline().update(*_one(v), v)
    assert scores[2100:2200].min() > 0.9 and scores[:2000].max() < 0.5
    constant = np.full(N, 100.0)  # dim_pct at 100 all evening: not a fault
    assert Flatline().update(*_one(constant), constant).max() == 0.0


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=40, max_size=120), st.data())
def test_a_score_depends_only_on_the_points_before_it(
    values: list[float], data: st.DataObject
) -> None:
    v = np.array(values)
    i = data.draw(st.integers(0, len(v) - 2))
    changed = v.copy()
    changed[i + 1 :] = data.draw(st.floats(-1e6, 1e6))
    a = Combined(Deviation(warmup=5), Flatline()).update(*_one(v), v)
    b = Combined(Deviation(warmup=5), Flatline()).update(*_one(changed), changed)
    assert a[: i + 1].tolist() == b[: i + 1].tolist()
    assert ((a >= 0) & (a <= 1)).all()
