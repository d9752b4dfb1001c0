"""Domain rules on physically plausible data from the simulators' healthy device models."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np

from processing.rules import Dropout, StreetlightRules, TrafficRules, pivot_readings
from simulators.city import build_city
from simulators.models import CITY_TZ, DeviceState, streetlight, traffic

MIN_US = 60_000_000


def _lamp_days(days: int = 2) -> dict[str, np.ndarray]:  # type: ignore[type-arg]
    lamp = build_city(streetlights=1, environment=0, traffic=0, gateways=1)[0].devices[0]
    rng, state = np.random.default_rng(3), DeviceState()
    start = datetime(2025, 3, 10, tzinfo=UTC)
    rows = [
        streetlight(lamp, start + timedelta(minutes=m), state, rng, 600)
        for m in range(0, days * 24 * 60, 10)
    ]
    return {k: np.array([r[k] for r in rows]) for k in ("power_w", "dim_pct", "ambient_lux")}


def _score(data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:  # type: ignore[type-arg]
    device = np.zeros(len(data["power_w"]), dtype=np.int64)
    time = np.arange(len(device), dtype=np.int64) * 10 * MIN_US
    return StreetlightRules().update(
        device, time, data["power_w"], data["dim_pct"], data["ambient_lux"]
    )


def test_healthy_streetlights_raise_no_rule() -> None:
    scores = _score(_lamp_days())
    assert all(s.max() < 0.5 for s in scores.values()), {k: s.max() for k, s in scores.items()}


def test_each_streetlight_fault_raises_its_own_rule() -> None:
    data = _lamp_days()
    night = np.flatnonzero(data["ambient_lux"] < 5)
    day = np.flatnonzero(data["ambient_lux"] > 20_000)
    out, burn, band = night[40:46], day[10:15], night[-10:-5]
    data["power_w"][out] = 0.4  # lamp out at night
    data["power_w"][burn], data["dim_pct"][burn] = 120.0, 100.0  # on in daylight
    data["power_w"][band] *= 1.7  # drawing 70 % too much for its dimming level
    scores = _score(data)
    assert (scores["lamp_out"][out[:1]] == 0).all()  # not yet: it may be switching on
    assert (scores["lamp_out"][out[2:]] >= 0.5).all()  # out for 15 minutes and more
    assert (scores["day_burner"][burn] >= 0.5).all()
    assert (scores["power_out_of_band"][band] >= 0.5).all()
    healthy = np.setdiff1d(np.arange(len(data["power_w"])), np.r_[out, burn, band])
    scores["lamp_out"][out] = 0  # checked above
    assert all(s[healthy].max() < 0.5 for s in scores.values())


def test_a_traffic_incident_is_found_and_rush_hour_is_not_one() -> None:
    detector = build_city(streetlights=0, environment=0, traffic=1, gateways=1)[0].devices[0]
    rng = np.random.default_rng(4)
    day = datetime(2025, 11, 19, tzinfo=CITY_TZ)  # a Wednesday
    rows = [
        traffic(detector, day + timedelta(minutes=m), DeviceState(), rng, 60)
        for m in range(0, 24 * 60, 5)
    ]
    speed = np.array([r["speed_kmh"] for r in rows])
    occupancy = np.array([r["occupancy_pct"] for r in rows])
    device = np.zeros(len(rows), dtype=np.int64)
    assert TrafficRules().update(device, speed, occupancy).max() < 0.5
    incident = np.arange(150, 160)  # 12:30-13:20: speed collapses, the lane fills
    speed[incident], occupancy[incident] = 8.0, 75.0
    scores = TrafficRules().update(device, speed, occupancy)
    assert (scores[incident] >= 0.5).all() and np.delete(scores, incident).max() < 0.5


def test_a_series_that_falls_silent_is_overdue_and_a_regular_one_is_not() -> None:
    d = Dropout(factor=5)
    t = np.arange(0, 60 * MIN_US, MIN_US)  # once a minute for an hour
    d.update(np.r_[np.zeros(60, np.int64), np.ones(60, np.int64)], np.r_[t, t])
    d.update(np.array([1]), np.array([60 * MIN_US]))  # series 1 goes on, series 0 stops
    at = 63 * MIN_US
    assert d.scores(at).tolist()[:2] < [0.5, 0.5]
    late = d.scores(70 * MIN_US)
    assert late[0] > 0.99 and late[1] > 0.9  # both silent long enough by now
    d.update(np.array([1]), np.array([69 * MIN_US]))
    assert d.scores(70 * MIN_US)[1] < 0.1


def test_values_pivot_back_into_readings_in_time_order() -> None:
    rng = np.random.default_rng(5)
    n = 500
    reading = rng.integers(0, 120, n).astype(np.int32)
    r_time = rng.integers(0, 50, 120) * 1_000_000  # ties: stable order by reading
    r_device = rng.integers(1, 30, 120)
    metric = rng.integers(0, 8, n).astype(np.int16)
    value = rng.normal(size=n)
    column = np.array([-1, 0, 1, -1, 2, -1, 3, -1])
    device, time, cols = pivot_readings(
        reading, metric, r_time[reading], r_device[reading], value, column
    )
    expected: dict[int, list[float]] = {}
    for r, m, x in zip(reading.tolist(), metric.tolist(), value.tolist(), strict=True):
        if column[m] >= 0:
            expected.setdefault(r, [math.nan] * 4)[column[m]] = x  # the last value wins
    rows = sorted(expected, key=lambda r: (r_time[r], r))
    assert time.tolist() == [r_time[r] for r in rows]
    assert device.tolist() == [r_device[r] for r in rows]
    np.testing.assert_array_equal(cols.T, np.array([expected[r] for r in rows]))
