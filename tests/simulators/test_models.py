from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from simulators.city import build_city
from simulators.models import (
    CITY_TZ,
    DeviceState,
    environment,
    streetlight,
    sun_elevation_deg,
    traffic,
)


def test_sun_is_up_at_chicago_noon_and_down_at_midnight() -> None:
    noon = datetime(2025, 6, 21, 12, 50, tzinfo=CITY_TZ)
    assert 68 < sun_elevation_deg(noon, 41.88, -87.63) < 74  # solstice: 90 - 41.9 + 23.4
    assert sun_elevation_deg(noon.replace(hour=0), 41.88, -87.63) < -20


def test_healthy_streetlights_are_lit_between_dusk_and_dawn_only() -> None:
    lamp = build_city(streetlights=1, environment=0, traffic=0, gateways=1)[0].devices[0]
    rng = np.random.default_rng(3)
    state = DeviceState()
    start = datetime(2025, 3, 10, tzinfo=UTC)
    for minutes in range(0, 2 * 24 * 60, 10):
        when = start + timedelta(minutes=minutes)
        m = streetlight(lamp, when, state, rng, 600)
        sun_up = sun_elevation_deg(when, lamp.latitude, lamp.longitude) > -0.833
        assert m["lamp_on"] == (0.0 if sun_up else 1.0), when
        assert (m["power_w"] > 20) == (not sun_up)


def test_traffic_peaks_at_rush_hour_and_temperature_in_the_afternoon() -> None:
    city = build_city(streetlights=0, environment=1, traffic=1, gateways=1)[0].devices
    env, det = city
    rng = np.random.default_rng(5)
    day = datetime(2025, 11, 19, tzinfo=CITY_TZ)  # a Wednesday
    volume = {
        h: np.mean(
            [
                traffic(det, day.replace(hour=h), DeviceState(), rng, 60)["volume_veh"]
                for _ in range(30)
            ]
        )
        for h in range(24)
    }
    assert max(volume, key=volume.__getitem__) in (7, 8, 17, 18)
    assert volume[8] > 3 * volume[3]
    temps = {
        h: environment(env, day.replace(hour=h), DeviceState(), rng, 60)["temperature_c"]
        for h in range(24)
    }
    assert max(temps, key=temps.__getitem__) in (13, 14, 15, 16, 17)


def test_the_same_seed_builds_the_same_city() -> None:
    assert build_city(seed=4, streetlights=50, gateways=4) == build_city(
        seed=4, streetlights=50, gateways=4
    )
    assert build_city(seed=4) != build_city(seed=5)
    sizes = [
        len(g.devices) for g in build_city(streetlights=30, environment=6, traffic=6, gateways=3)
    ]
    assert sum(sizes) == 42
