"""Flicker, dead traffic detector and range checks on the simulators' healthy models."""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from processing.checks import DeadDetector, Flicker, range_scores
from processing.rules import LIT_W
from simulators.city import build_city
from simulators.models import DeviceState, streetlight, traffic
from tests.processing.city import START

MIN_US = 60_000_000


def _lamp(days: int) -> dict[str, np.ndarray]:  # type: ignore[type-arg]
    lamp = build_city(streetlights=1, environment=0, traffic=0, gateways=1)[0].devices[0]
    rng, state = np.random.default_rng(8), DeviceState()
    rows = [
        streetlight(lamp, START + timedelta(minutes=m), state, rng, 60) for m in range(days * 1440)
    ]
    return {k: np.array([r[k] for r in rows]) for k in ("power_w", "lamp_on", "ambient_lux")}


def _road(days: int) -> dict[str, np.ndarray]:  # type: ignore[type-arg]
    road = build_city(streetlights=0, environment=0, traffic=1, gateways=1)[0].devices[0]
    rng = np.random.default_rng(9)
    rows = [
        traffic(road, START + timedelta(minutes=m), DeviceState(), rng, 60)
        for m in range(days * 1440)
    ]
    return {k: np.array([r[k] for r in rows]) for k in ("speed_kmh", "volume_veh", "occupancy_pct")}


def _ids(n: int) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[type-arg]
    return np.zeros(n, dtype=np.int64), np.arange(n, dtype=np.int64) * MIN_US


def test_a_flickering_lamp_is_found_and_dusk_and_dawn_are_not_flicker() -> None:
    data = _lamp(3)
    device, time = _ids(len(data["power_w"]))
    healthy = Flicker().update(device, time, data["power_w"] > LIT_W)
    assert healthy.max() < 0.5  # a healthy lamp switches twice a day
    night = np.flatnonzero(data["lamp_on"] == 1)[500:530]
    power = data["power_w"].copy()
    power[night[::2]] = 0.4  # off every other minute for half an hour
    scores = Flicker().update(device, time, power > LIT_W)
    assert (scores[night[8:]] >= 0.5).all()  # after four switches
    assert scores[night[-1] + 180 :].max() < 0.5  # calm again within hours


def test_a_dead_traffic_detector_is_found_and_a_quiet_night_is_not_dead() -> None:
    data = _road(2)
    device, time = _ids(len(data["speed_kmh"]))
    cols = (data["speed_kmh"], data["volume_veh"], data["occupancy_pct"])
    assert DeadDetector().update(device, time, *cols).max() == 0.0
    dead = slice(1440 + 120, 1440 + 240)  # two hours of zeros from 02:00 on day two
    for c in cols:
        c[dead] = 0.0
    scores = DeadDetector(persist_s=900).update(device, time, *cols)
    assert (scores[dead][:15] == 0).all() and (scores[dead][15:] == 1).all()
    assert scores[: dead.start].max() == 0 and scores[dead.stop :].max() == 0


def test_a_missing_metric_does_not_hide_a_dead_detector() -> None:
    device, time = _ids(30)
    zeros, missing = np.zeros(30), np.full(30, np.nan)
    assert DeadDetector(persist_s=600).update(device, time, missing, zeros, zeros)[-1] == 1
    assert DeadDetector(persist_s=600).update(device, time, missing, missing, missing).max() == 0


def test_range_scores_are_calibrated_by_how_far_outside() -> None:
    low, high = np.array([0.0, 0.0]), np.array([0.0, 100.0])
    metric = np.ones(5, dtype=np.int64)
    scores = range_scores(metric, np.array([50.0, 100.0, 100.1, 110.0, -30.0]), low, high)
    assert scores.tolist()[:2] == [0.0, 0.0]
    assert 0.75 <= scores[2] < 0.8 and scores[3] == 1.0 and scores[4] == 1.0


def test_range_scores_of_values_near_the_largest_double_do_not_overflow() -> None:
    import numpy as np

    from devices.tables import HIGH, LOW
    from processing.checks import range_scores

    lamp_on = 3  # a metric with a narrow range (0 to 1)
    metric = np.array([lamp_on, lamp_on], dtype=np.int64)
    scores = range_scores(metric, np.array([1e308, -1e308]), LOW, HIGH)  # no warning raised
    assert scores.tolist() == [1.0, 1.0]
