"""The physics people check, on healthy devices of a simulated city."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from simulators.city import CHICAGO_AREA, build_city
from simulators.generator import CityGenerator
from simulators.models import CITY_TZ, DeviceState, streetlight, sun_elevation_deg
from simulators.physics import SUNSET_ELEVATION, sun_elevation

CITY = build_city(seed=4, streetlights=60, environment=24, traffic=24, gateways=4)
DEVICES = {d.device_id: d for g in CITY for d in g.devices}
Series = dict[str, tuple[np.ndarray, dict[str, np.ndarray]]]  # type: ignore[type-arg]


def _series(start: datetime, days: float, interval_s: float, seed: int = 1) -> Series:
    """device → (epoch-ms times, metric → values) over a healthy run."""
    gen = CityGenerator(
        CITY, start=start, end=start + timedelta(days=days), interval_s=interval_s, seed=seed
    )
    rows: dict[str, list[tuple[int, dict[str, float]]]] = defaultdict(list)
    for m in gen.messages():
        for r in m.readings:
            assert isinstance(r.ts, int)
            rows[r.device_id].append((r.ts, r.metrics))
    out: Series = {}
    for did, rs in rows.items():
        ts = np.array([t for t, _ in rs])
        out[did] = (ts, {k: np.array([m[k] for _, m in rs]) for k in rs[0][1]})
    return out


def _local(ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[type-arg]
    """Local hour and weekday (Monday 0) of epoch-ms times."""
    local = [datetime.fromtimestamp(t / 1000, CITY_TZ) for t in ts]
    return np.array([x.hour for x in local]), np.array([x.weekday() for x in local])


@pytest.fixture(scope="module")
def winter_week() -> Series:
    return _series(datetime(2025, 1, 13, 6, tzinfo=UTC), 7, 900)  # Monday 00:00 local


@pytest.fixture(scope="module")
def summer_fortnight() -> Series:
    return _series(datetime(2025, 7, 14, 5, tzinfo=UTC), 14, 1800)


def _kind(series: Series, prefix: str) -> Series:
    return {d: s for d, s in series.items() if d.startswith(prefix)}


def test_sun_is_up_at_chicago_noon_and_down_at_midnight() -> None:
    noon = datetime(2025, 6, 21, 12, 50, tzinfo=CITY_TZ)
    assert 68 < sun_elevation_deg(noon, 41.88, -87.63) < 74  # solstice: 90 - 41.9 + 23.4
    assert sun_elevation_deg(noon.replace(hour=0), 41.88, -87.63) < -20
    # sunset at the solstice in Chicago: 20:29 CDT (NOAA's calculator), 01:29 UTC
    before = datetime(2025, 6, 21, 1, 27, tzinfo=UTC).timestamp()
    assert sun_elevation(before, 41.88, -87.63) > SUNSET_ELEVATION
    assert sun_elevation(before + 240, 41.88, -87.63) < SUNSET_ELEVATION


@pytest.mark.parametrize("season", ["winter_week", "summer_fortnight"])
def test_healthy_streetlights_are_lit_between_dusk_and_dawn_only(
    season: str, request: pytest.FixtureRequest
) -> None:
    series: Series = request.getfixturevalue(season)
    lights = _kind(series, "sl-")
    assert len(lights) == 60
    for did, (ts, m) in lights.items():
        d = DEVICES[did]
        dark = sun_elevation(ts / 1000, d.latitude, d.longitude) < SUNSET_ELEVATION
        assert (m["lamp_on"] == dark).all(), did
        assert (m["power_w"][dark] > 0.9 * 0.5 * d.rating_w).all()
        assert (m["power_w"][~dark] < 1).all()
        hour, _ = _local(ts)
        evening, small_hours = dark & (hour >= 12), dark & (hour < 12)
        assert (m["dim_pct"][evening] == 100).all() and (m["dim_pct"][small_hours] == 50).all()
        assert (m["ambient_lux"][dark & (hour < 4)] < 10).all()  # the photocell sees night
        energy = m["energy_wh"]
        assert (np.diff(energy) >= 0).all()  # a meter only counts up
        step = np.diff(ts) / 3_600_000 * m["power_w"][1:]
        assert np.allclose(np.diff(energy), step, atol=0.11)


def test_power_follows_each_lamps_rating_and_dim_level(winter_week: Series) -> None:
    for did, (_, m) in _kind(winter_week, "sl-").items():
        lit = m["lamp_on"] == 1
        per = m["power_w"][lit] / (m["dim_pct"][lit] / 100) / DEVICES[did].rating_w
        assert abs(per.mean() - 1) < 0.01 and per.std() < 0.03
        amps = m["power_w"][lit] / (m["voltage_v"][lit] * 0.95)
        assert np.allclose(m["current_a"][lit], amps, atol=0.003)


def test_traffic_peaks_at_weekday_rush_hours_and_weekends_are_quieter(
    winter_week: Series,
) -> None:
    volume = np.zeros((7, 24))
    for ts, m in _kind(winter_week, "tr-").values():
        hour, day = _local(ts)
        np.add.at(volume, (day, hour), m["volume_veh"])
    weekday, weekend = volume[:5].mean(axis=0), volume[5:].mean(axis=0)
    assert int(np.argmax(weekday)) in (7, 8, 16, 17, 18)
    morning, evening = weekday[7:9].mean(), weekday[16:19].mean()
    assert morning > 1.5 * weekday[11:14].mean() and evening > 1.5 * weekday[11:14].mean()
    assert morning > 5 * weekday[1:4].mean()
    assert weekend.max() < 0.75 * weekday.max()
    assert weekend[8] < 0.4 * weekday[8]  # no morning rush on a weekend
    assert 11 <= int(np.argmax(weekend)) <= 16


def test_speed_falls_as_occupancy_rises(winter_week: Series) -> None:
    for did, (_, m) in _kind(winter_week, "tr-").items():
        assert np.corrcoef(m["speed_kmh"], m["occupancy_pct"])[0, 1] < -0.8, did
        assert m["speed_kmh"].max() <= 1.2 * DEVICES[did].free_flow_kmh


@pytest.mark.parametrize("season", ["winter_week", "summer_fortnight"])
def test_temperature_peaks_in_the_afternoon_and_humidity_moves_against_it(
    season: str, request: pytest.FixtureRequest
) -> None:
    series: Series = request.getfixturevalue(season)
    temp, hum, o3 = np.zeros(24), np.zeros(24), np.zeros(24)
    for ts, m in _kind(series, "env-").values():
        hour, _ = _local(ts)
        np.add.at(temp, hour, m["temperature_c"])
        np.add.at(hum, hour, m["humidity_pct"])
        np.add.at(o3, hour, m["o3_ppb"])
        assert np.corrcoef(m["temperature_c"], m["humidity_pct"])[0, 1] < -0.1
        assert ((m["humidity_pct"] >= 5) & (m["humidity_pct"] <= 100)).all()
    assert 13 <= int(np.argmax(temp)) <= 17
    assert 3 <= int(np.argmin(temp)) <= 7
    assert 12 <= int(np.argmin(hum)) <= 17
    assert np.corrcoef(temp, hum)[0, 1] < -0.9  # over the day: warmer air, lower humidity
    assert 13 <= int(np.argmax(o3)) <= 17


def test_seasons_and_pressure_fronts() -> None:
    winter = _series(datetime(2025, 1, 1, tzinfo=UTC), 28, 3600, seed=9)
    summer = _series(datetime(2025, 7, 1, tzinfo=UTC), 3, 3600, seed=9)
    w = np.concatenate([m["temperature_c"] for _, m in _kind(winter, "env-").values()])
    s = np.concatenate([m["temperature_c"] for _, m in _kind(summer, "env-").values()])
    assert -15 < w.mean() < 2 and 18 < s.mean() < 30
    _, m = next(iter(_kind(winter, "env-").values()))
    p = m["pressure_hpa"]
    assert p.min() > 985 and p.max() < 1040 and p.max() - p.min() > 10
    day_change = p[24:] - p[:-24]
    assert day_change.min() < -5 and day_change.max() > 5  # fronts come and go


def test_pollution_rises_with_rush_hour_near_roads(winter_week: Series) -> None:
    near, far = [], []
    for did, (ts, m) in _kind(winter_week, "env-").items():
        hour, day = _local(ts)
        weekday = day < 5
        rush = m["no2_ppb"][weekday & (hour == 8)].mean()
        midday = m["no2_ppb"][weekday & (hour == 12)].mean()
        pm_rush = m["pm2_5_ugm3"][weekday & (hour == 8)].mean()
        pm_mid = m["pm2_5_ugm3"][weekday & (hour == 12)].mean()
        noise_rush = m["noise_dba"][weekday & (hour == 8)].mean()
        noise_night = m["noise_dba"][hour == 3].mean()
        figures = (rush - midday, pm_rush - pm_mid, noise_rush - noise_night)
        if DEVICES[did].near_road > 0.8:
            near.append(figures)
        elif DEVICES[did].near_road < 0.35:
            far.append(figures)
    assert near and far
    n, f = np.mean(near, axis=0), np.mean(far, axis=0)
    assert n[0] > 10 and n[0] > 2 * f[0]  # NO2 at the morning rush, by the road
    assert n[1] > 3 and n[1] > 2 * f[1]  # PM2.5 too
    assert n[2] > 8  # and noise


def test_devices_lie_in_the_city_and_gateways_serve_neighbourhoods() -> None:
    city = build_city(seed=8, streetlights=4000, environment=100, traffic=200, gateways=40)
    lat = np.array([d.latitude for g in city for d in g.devices])
    lon = np.array([d.longitude for g in city for d in g.devices])
    assert CHICAGO_AREA.contains(lat, lon).all()  # in the box and not in the lake
    sizes = [len(g.devices) for g in city]
    assert sum(sizes) == 4300 and min(sizes) >= 100 and max(sizes) <= 110
    spread = np.mean([np.std([d.latitude for d in g.devices]) for g in city])
    assert spread < 0.35 * np.std(lat)  # a gateway's devices are near one another
    ids = [d.device_id for g in city for d in g.devices]
    assert len(set(ids)) == len(ids)


def test_the_same_seed_builds_the_same_city() -> None:
    assert build_city(seed=4, streetlights=50, gateways=4) == build_city(
        seed=4, streetlights=50, gateways=4
    )
    assert build_city(seed=4) != build_city(seed=5)
    sizes = [
        len(g.devices) for g in build_city(streetlights=30, environment=6, traffic=6, gateways=3)
    ]
    assert sum(sizes) == 42


def test_one_device_at_a_time_matches_the_models() -> None:
    lamp = DEVICES["sl-000000"]
    rng, state = np.random.default_rng(3), DeviceState()
    night = datetime(2025, 3, 10, 4, tzinfo=UTC)
    m = streetlight(lamp, night, state, rng, 600)
    assert m["lamp_on"] == 1 and m["dim_pct"] == 100 and m["energy_wh"] > 0
    assert streetlight(lamp, night + timedelta(hours=12), state, rng, 600)["lamp_on"] == 0
