"""The seasonal baseline: the rush and dawn are usual at their hour; drift is found."""

from __future__ import annotations

from itertools import pairwise

import numpy as np

from processing.detectors import Deviation
from processing.seasonal import Seasonal
from tests.processing.city import CITY_OFFSET_S, Values, healthy

DAY = 1440  # one-minute readings
WARM_US = 2 * 86_400_000_000


def _scores(v: np.ndarray, time: np.ndarray, device: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[type-arg]
    group = np.zeros(len(v), dtype=np.int64)  # one metric: the devices share the weather
    return Seasonal(utc_offset_s=CITY_OFFSET_S).update(device, time, v, group)


def _detected(c: Values, value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[type-arg]
    """As ingest.detect scores a metric with a daily rhythm: unusual at this hour and
    unusual against the recent level, both."""
    usual, _ = _scores(value, c.time, c.device)
    recent = Deviation(alpha=0.01, warmup=120).update(c.device, c.time, value)
    return usual, np.minimum(usual, recent)


def test_the_rush_is_usual_at_its_hour_but_not_at_three_in_the_morning() -> None:
    c = healthy("occupancy_pct", interval_s=60, devices=8)
    usual, both = _detected(c, c.value)
    first = c.device == 0
    assert (usual[first][:DAY] == 0).all()  # warm-up: no score before a day of baseline
    after = c.time >= c.time[0] + WARM_US
    assert both[after].max() < 0.5
    assert (usual[after] >= 0.5).mean() < 0.002  # alone, the hour's level is nearly enough
    moved = c.value.copy()
    rows = np.flatnonzero(first)
    night = rows[4 * DAY + 180 : 4 * DAY + 183]  # Friday 03:00
    moved[night] = c.value[rows[4 * DAY + 480]]  # Friday 08:00's occupancy
    usual, both = _detected(c, moved)
    assert (usual[night] > 0.9).all()
    assert both[np.setdiff1d(np.flatnonzero(after), night)].max() < 0.5
    # Known limit: the recent level's spread takes in the daily rhythm, so the two
    # together report a rush-level reading at 3 a.m. only when it is also far from the
    # recent level (a lane blocked solid), not at the rush's usual 20-30 %.
    moved[night] = 90.0
    _, both = _detected(c, moved)
    assert (both[night] > 0.9).all()


def test_dawn_is_usual_at_its_hour_though_the_recent_level_calls_it_an_anomaly() -> None:
    c = healthy("ambient_lux", interval_s=60, devices=8)
    recent = Deviation(alpha=0.01, warmup=120).update(c.device, c.time, c.value)
    _, both = _detected(c, c.value)
    after = c.time >= c.time[0] + WARM_US
    assert (recent[after] >= 0.5).sum() > 20  # why the baseline exists
    assert both[after].max() < 0.5


def test_one_sensor_drifting_is_found_and_the_weather_moving_all_is_not() -> None:
    c = healthy("temperature_c", devices=12)  # a drifting one moves the common 1/12
    _, drift = _scores(c.value, c.time, c.device)
    assert drift.max() < 0.5  # fronts move every thermometer of the city
    drifted = c.value.copy()
    mine = np.flatnonzero((c.device == 2) & (c.time >= c.time[0] + 3 * 86_400_000_000))
    drifted[mine] += np.linspace(0, 4.0, len(mine))  # +4 °C over two days (Thu, Fri)
    _, drift = _scores(drifted, c.time, c.device)
    assert drift[mine[:12]].max() < 0.5  # not at once: it is slow
    assert (drift[mine[-100:]] > 0.9).all()
    assert drift[c.device != 2].max() < 0.5


def test_series_are_independent_without_a_group_and_state_is_compact() -> None:
    c = healthy("occupancy_pct")
    s = Seasonal(utc_offset_s=CITY_OFFSET_S)
    ids = np.where(c.device == 0, 70_000, c.device)
    both, _ = s.update(ids, c.time, c.value)
    first = c.device == 0
    alone, _ = Seasonal(utc_offset_s=CITY_OFFSET_S).update(
        c.device[first], c.time[first], c.value[first]
    )
    np.testing.assert_array_equal(both[first], alone)
    assert s.series == len(np.unique(c.device))


def test_batches_of_any_size_score_as_one_batch() -> None:
    """The slot of a value (hour of the local day, weekday or weekend) is reused while
    values stay in one hour; cuts anywhere, across hours and days, change nothing."""
    c = healthy("temperature_c")
    group = np.zeros(len(c.value), dtype=np.int64)
    whole = Seasonal(utc_offset_s=CITY_OFFSET_S).update(c.device, c.time, c.value, group)
    cut = Seasonal(utc_offset_s=CITY_OFFSET_S)
    edges = np.r_[0, np.sort(np.random.default_rng(3).integers(0, len(c.value), 40)), len(c.value)]
    parts = [
        cut.update(c.device[a:b], c.time[a:b], c.value[a:b], group[a:b])
        for a, b in pairwise(edges.tolist())
    ]
    for i in (0, 1):  # the seasonal score, then drift
        np.testing.assert_array_equal(np.concatenate([p[i] for p in parts]), whole[i])
    assert (whole[0] > 0).any() and (whole[1] > 0).any()  # warm: both scored something
