"""What healthy devices measure, vectorised over devices: one call per kind per instant.

Each function fills an (n devices x metrics) array, columns in catalog order
(``METRICS[kind]``), from the devices' parameters (``Fleet``), the instant's local time
and city-wide weather, and a random generator. Nothing here loops over devices.

- Streetlights: lit while the sun is below the horizon at the lamp (elevation < -0.833°,
  NOAA's sunset); 100 % until local midnight, then 50 % until dawn; power = rating x
  dim level with 1 % noise (0.3-0.5 W standby by day); mains voltage with a per-feeder
  offset and an evening sag; current = P / (V x power factor); cumulative energy;
  ambient light from the sun's elevation (daylight, twilight, night) and cloud.
- Environment: seasonal and diurnal temperature (coldest near sunrise, warmest at
  15:00 local), relative
  humidity from a dew point (so it falls as the air warms), pressure fronts every few
  days (a slow fall, a quick rise, a cold spell and clouds behind them), PM2.5, PM10 and
  NO2 from a background plus rush-hour traffic scaled by nearness to an arterial,
  O3 peaking in the afternoon (less in winter and near NO2), noise following traffic.
- Traffic: demand with weekday morning and evening peaks (each detector's direction
  weighting them) and a quieter weekend; Greenshields' model turns demand into density,
  so speed falls as occupancy rises; volume is Poisson.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from devices.catalog import Kind, metrics_of
from simulators.city import CHICAGO_AREA, Area, SimDevice

F64 = npt.NDArray[np.float64]

METRICS: dict[Kind, tuple[str, ...]] = {k: tuple(m.name for m in metrics_of(k)) for k in Kind}
"""Column order of each kind's arrays: the catalog's order."""

DECIMALS: dict[str, int] = {
    "power_w": 2,
    "energy_wh": 1,
    "lamp_on": 0,
    "dim_pct": 0,
    "voltage_v": 1,
    "current_a": 3,
    "ambient_lux": 1,
    "temperature_c": 2,
    "humidity_pct": 1,
    "pressure_hpa": 1,
    "pm2_5_ugm3": 1,
    "pm10_ugm3": 1,
    "no2_ppb": 1,
    "o3_ppb": 1,
    "noise_dba": 1,
    "speed_kmh": 1,
    "volume_veh": 0,
    "occupancy_pct": 1,
}
"""How many decimals each metric is reported with (the device's resolution)."""

SUNSET_ELEVATION = -0.833
"""The sun's centre this far below the horizon: sunset and sunrise (refraction, radius)."""
STANDBY_W = 0.4


def sun_elevation(t_s: F64 | float, latitude: F64 | float, longitude: F64 | float) -> F64:
    """The sun's elevation in degrees (NOAA's low-precision formulas, ±0.5°), broadcast
    over epoch seconds ``t_s`` and positions."""
    t = np.asarray(t_s, dtype=np.float64)
    stamp = (t * 1000).astype("datetime64[ms]")
    year_start = stamp.astype("datetime64[Y]").astype("datetime64[ms]")
    days = (stamp - year_start).astype(np.float64) / 86_400_000  # since 1 January, UTC
    hours = (days % 1.0) * 24
    g = 2 * np.pi / 365 * (days - 0.5)
    decl = (
        0.006918
        - 0.399912 * np.cos(g)
        + 0.070257 * np.sin(g)
        - 0.006758 * np.cos(2 * g)
        + 0.000907 * np.sin(2 * g)
        - 0.002697 * np.cos(3 * g)
        + 0.00148 * np.sin(3 * g)
    )
    eqtime = 229.18 * (
        0.000075
        + 0.001868 * np.cos(g)
        - 0.032077 * np.sin(g)
        - 0.014615 * np.cos(2 * g)
        - 0.040849 * np.sin(2 * g)
    )
    hour_angle = np.radians((hours * 60 + eqtime + 4 * np.asarray(longitude)) / 4 - 180)
    lat = np.radians(np.asarray(latitude))
    cos_zenith = np.sin(lat) * np.sin(decl) + np.cos(lat) * np.cos(decl) * np.cos(hour_angle)
    result: F64 = 90 - np.degrees(np.arccos(np.clip(cos_zenith, -1.0, 1.0)))
    return result


@dataclass(frozen=True, slots=True)
class Instant:
    """An instant and its local calendar: what the daily and weekly rhythms depend on."""

    t_s: float
    hour: float
    """Local hour of day, 0 ≤ hour < 24."""
    weekday: bool
    """Monday to Friday, local."""
    doy: float
    """Local day of the year, 1 on 1 January."""

    @classmethod
    def at(cls, t_s: float, tz: ZoneInfo) -> Instant:
        local = datetime.fromtimestamp(t_s, tz)
        hour = local.hour + local.minute / 60 + (local.second + local.microsecond / 1e6) / 3600
        return cls(t_s, hour, local.weekday() < 5, local.timetuple().tm_yday + hour / 24)


def demand(hour: float, weekday: bool, am: F64 | float = 1.0, pm: F64 | float = 1.0) -> F64:
    """Traffic demand, 0..1 of a road's capacity: weekday peaks near 08:00 and 17:15
    (weighted ``am``/``pm`` by the road's direction), a quieter weekend afternoon."""
    if weekday:
        day = _sigmoid((hour - 5.5) / 0.6) * _sigmoid((22 - hour) / 1.2)
        return np.asarray(
            0.05
            + 0.30 * day
            + 0.58 * np.asarray(am) * math.exp(-(((hour - 7.9) / 0.9) ** 2))
            + 0.58 * np.asarray(pm) * math.exp(-(((hour - 17.2) / 1.1) ** 2)),
            dtype=np.float64,
        )
    level = 0.06 + 0.40 * math.exp(-(((hour - 13.5) / 3.6) ** 2))
    return np.full(np.shape(am), level, dtype=np.float64)


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


@dataclass(frozen=True, slots=True)
class WeatherNow:
    temperature_c: float
    """Departure from the seasonal normal."""
    dew_point_c: float
    """Departure of the dew point from its seasonal normal."""
    pressure_hpa: float
    """Sea-level pressure."""
    cloud: float
    """0 clear .. 1 overcast."""


class Weather:
    """City-wide weather from a seed: pressure fronts passing every few days.

    A front's pressure falls for a day before it and recovers in hours after it, with
    clouds around it; a cold spell and dry air follow it. Fronts are drawn per week of
    absolute time, so any instant's weather depends only on the seed and the instant.
    """

    WEEK_S = 7 * 86_400

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._weeks: dict[int, tuple[F64, F64, F64]] = {}
        self._phase = float(np.random.default_rng([seed, 0x5EA]).uniform(0, 2 * np.pi))

    def _fronts(self, week: int) -> tuple[F64, F64, F64]:
        if week not in self._weeks:
            rng = np.random.default_rng([self.seed, 0xF407, week])
            n = int(rng.integers(1, 4))
            times = week * self.WEEK_S + np.sort(rng.uniform(0, self.WEEK_S, n))
            self._weeks[week] = (times, rng.uniform(6, 18, n), rng.uniform(2, 8, n))
            if len(self._weeks) > 64:
                self._weeks.pop(next(iter(self._weeks)))
        return self._weeks[week]

    def at(self, t_s: float) -> WeatherNow:
        week = int(t_s // self.WEEK_S)
        times, depth, chill = (
            np.concatenate(x)
            for x in zip(*map(self._fronts, (week - 1, week, week + 1)), strict=True)
        )
        h = (t_s - times) / 3600  # hours since each front
        before = h < 0
        shape = np.where(before, np.exp(-((h / 20) ** 2)), np.exp(-((h / 8) ** 2)))
        after = np.where(
            before, 0.0, (1 - np.exp(-np.maximum(h, 0) / 3)) * np.exp(-np.maximum(h, 0) / 40)
        )
        warm = np.where(before, np.exp(-((h / 18) ** 2)), 0.0)
        slow = 4.0 * math.sin(2 * math.pi * t_s / (6.3 * 86_400) + self._phase)
        return WeatherNow(
            temperature_c=float(np.sum(0.3 * chill * warm - chill * after)),
            dew_point_c=float(np.sum(0.5 * chill * warm - 1.3 * chill * after)),
            pressure_hpa=float(1015 + slow - np.sum(depth * shape)),
            cloud=float(np.clip(0.25 + np.sum(0.8 * np.exp(-((h / 10) ** 2))) - slow / 20, 0, 1)),
        )


def diurnal(hour: float, *, coldest: float, warmest: float = 15.0) -> float:
    """-1 at the ``coldest`` hour (about sunrise), +1 at the ``warmest``: a quick rise
    through the morning, a slow fall through the evening and night."""
    if coldest <= hour <= warmest:
        return -math.cos(math.pi * (hour - coldest) / (warmest - coldest))
    since = (hour - warmest) % 24
    return math.cos(math.pi * since / (24 - (warmest - coldest)))


class Fleet:
    """The devices of one kind, as arrays in a fixed order, with their hidden parameters
    (drawn from ``seed``): what the vectorised models read."""

    def __init__(self, kind: Kind, devices: list[SimDevice], seed: int, area: Area) -> None:
        self.kind = kind
        self.n = n = len(devices)
        self.metrics = METRICS[kind]
        self.device_ids = [d.device_id for d in devices]
        self.lat = np.array([d.latitude for d in devices], dtype=np.float64)
        self.lon = np.array([d.longitude for d in devices], dtype=np.float64)
        rng = np.random.default_rng([seed, 0xF1EE7, list(Kind).index(kind)])
        if kind is Kind.STREETLIGHT:
            self.rating = np.array([d.rating_w for d in devices], dtype=np.float64)
            self.feeder_v = rng.normal(0, 1.5, n)
            self.shade = rng.uniform(0.6, 1.0, n)
            years = rng.uniform(0.5, 12, n)
            self.energy0 = np.round(self.rating * 0.75 * 4200 * years, 1)
        elif kind is Kind.ENVIRONMENT:
            self.near_road = np.array([d.near_road for d in devices], dtype=np.float64)
            cos = math.cos(math.radians(area.origin[0]))
            km = 111.045 * np.hypot(self.lat - area.origin[0], (self.lon - area.origin[1]) * cos)
            self.heat_island = 1.5 * np.exp(-km / 8) + rng.normal(0, 0.3, n)
            self.dew_bias = rng.normal(0, 0.4, n)
            self.pressure_bias = rng.normal(0, 0.4, n)
            self.pm_bias = rng.uniform(0.85, 1.15, n)
        else:
            self.free_flow = np.array([d.free_flow_kmh for d in devices], dtype=np.float64)
            self.lanes = np.array([max(1, d.lanes) for d in devices], dtype=np.float64)
            self.capacity = np.where(self.free_flow > 80, 1900.0, 850.0)  # veh/h per lane
            self.scale = rng.uniform(0.7, 1.0, n)
            inbound = rng.random(n) < 0.5
            self.am = np.where(inbound, 1.0, 0.75)
            self.pm = np.where(inbound, 0.75, 1.0)


def streetlights(
    f: Fleet, at: Instant, weather: WeatherNow, rng: np.random.Generator, out: F64
) -> None:
    """Fill ``out`` (n x 7): power, energy (left for the caller), lamp_on, dim, V, A, lux."""
    elevation = sun_elevation(at.t_s, f.lat, f.lon)
    on = elevation < SUNSET_ELEVATION
    dim = np.where(on, 100.0 if at.hour >= 12 else 50.0, 0.0)
    noise = rng.normal(0, 1, (4, f.n))
    power = np.where(on, f.rating * dim / 100 * (1 + 0.01 * noise[0]), STANDBY_W + 0.03 * noise[0])
    evening = math.exp(-(((at.hour - 19) / 2.5) ** 2))
    voltage = 120 + f.feeder_v - 1.5 * evening + 0.4 * noise[1]
    sin_e = np.sin(np.radians(np.maximum(elevation, 0)))
    daylight = 110_000 * sin_e**1.15 * (1 - 0.75 * weather.cloud)
    twilight = 10 ** (2.6 + 0.35 * np.minimum(elevation, 0)) * (1 - 0.5 * weather.cloud)
    lux = (daylight + twilight) * f.shade * (1 + 0.02 * noise[2]) + 1.5 + 0.3 * np.abs(noise[3])
    out[:, 0] = np.maximum(power, 0.3)
    out[:, 2] = on
    out[:, 3] = dim
    out[:, 4] = voltage
    out[:, 5] = current_a(out[:, 0], voltage, on)
    out[:, 6] = lux


def current_a(power_w: Any, voltage_v: Any, lit: Any) -> Any:
    """A lamp's current from its power (arrays or numbers): power factor 0.95 lit, 0.5 on
    standby."""
    return power_w / (voltage_v * np.where(lit, 0.95, 0.5))


def environment(
    f: Fleet, at: Instant, weather: WeatherNow, rng: np.random.Generator, out: F64
) -> None:
    """Fill ``out`` (n x 8): temperature, humidity, pressure, PM2.5, PM10, NO2, O3, noise."""
    noise = rng.normal(0, 1, (9, f.n))
    season = math.cos(2 * math.pi * (at.doy - 21) / 365.25)  # +1 late January, -1 July
    summer = (1 - season) / 2
    amplitude = 4.5 * (1 - 0.6 * weather.cloud)
    temp = (
        10.3
        - 14.2 * season
        + amplitude * diurnal(at.hour, coldest=5.5 + 1.5 * (1 + season) / 2)
        + weather.temperature_c
        + f.heat_island
        + 0.15 * noise[0]
    )
    dew = 3.5 - 12.5 * season + weather.dew_point_c + f.dew_bias + 0.3 * noise[1]
    dew = np.minimum(dew, temp - 0.3)
    humidity = 100 * np.exp(17.625 * dew / (243.04 + dew) - 17.625 * temp / (243.04 + temp))
    pressure = weather.pressure_hpa + f.pressure_bias + 0.15 * noise[2]
    rush = float(demand(at.hour, at.weekday))
    road = f.near_road * rush
    stable = 0.5 * (1 + math.cos(2 * math.pi * (at.hour - 3) / 24))  # night inversion
    winter = (1 + season) / 2
    pm25 = (5 + 3 * winter + 2.5 * stable + 14 * road) * f.pm_bias * np.exp(0.12 * noise[3])
    pm10 = 1.55 * pm25 + 8 * road + 1.5 * np.abs(noise[4])
    no2 = (7 + 6 * stable + 6 * winter + 32 * road) * np.exp(0.1 * noise[5])
    sun = math.exp(-(((at.hour - 15) / 3.2) ** 2)) * (1 - 0.6 * weather.cloud)
    o3 = np.maximum(1.0, 18 + (18 + 22 * summer) * sun - 0.35 * (no2 - 10) + 1.5 * noise[6])
    dba = 42 + 3 * rush + 10 * np.log10(1 + 60 * road) + 1.0 * noise[7]
    out[:, 0] = temp
    out[:, 1] = np.clip(humidity, 5, 100)
    out[:, 2] = pressure
    out[:, 3] = pm25
    out[:, 4] = pm10
    out[:, 5] = no2
    out[:, 6] = o3
    out[:, 7] = dba


def traffic(f: Fleet, at: Instant, dt_s: float, rng: np.random.Generator, out: F64) -> None:
    """Fill ``out`` (n x 3): speed, volume in the interval, occupancy."""
    x = np.minimum(demand(at.hour, at.weekday, f.am, f.pm) * f.scale, 0.95)  # flow/capacity
    density = 0.5 * (1 - np.sqrt(1 - x))  # of jam density, Greenshields' free-flow branch
    noise = rng.normal(0, 1, (3, f.n))
    volume = rng.poisson(x * f.capacity * f.lanes * dt_s / 3600)
    out[:, 0] = np.maximum(3.0, f.free_flow * (1 - density) * (1 + 0.03 * noise[0]))
    out[:, 1] = volume
    out[:, 2] = np.clip(88 * density * (1 + 0.05 * noise[1]) + 0.2 * noise[2], 0, 100)


class CityPhysics:
    """Every device of a city, one kind at a time, at one instant: healthy readings."""

    def __init__(self, fleets: dict[Kind, Fleet], *, seed: int, area: Area = CHICAGO_AREA) -> None:
        self.fleets = fleets
        self.seed = seed
        self.tz = area.zone()
        self.weather = Weather(seed)
        light = fleets.get(Kind.STREETLIGHT)
        self.energy = light.energy0.copy() if light is not None else np.zeros(0)

    def healthy(self, t_s: float, dt_s: float, tick: int) -> dict[Kind, F64]:
        """Each kind's (n x metrics) array at ``t_s``; ``tick`` seeds the noise.

        Energy is not filled in: it accumulates the power actually drawn, faults
        included, so the caller adds it (``accumulate_energy``) after injecting faults.
        """
        at = Instant.at(t_s, self.tz)
        weather = self.weather.at(t_s)
        rng = np.random.default_rng([self.seed, tick])
        arrays: dict[Kind, F64] = {}
        for kind in (Kind.STREETLIGHT, Kind.ENVIRONMENT, Kind.TRAFFIC):
            f = self.fleets.get(kind)
            if f is None:
                continue
            out = np.empty((f.n, len(f.metrics)))
            if kind is Kind.STREETLIGHT:
                streetlights(f, at, weather, rng, out)
            elif kind is Kind.ENVIRONMENT:
                environment(f, at, weather, rng, out)
            else:
                traffic(f, at, dt_s, rng, out)
            arrays[kind] = out
        return arrays

    def accumulate_energy(self, lights: F64, dt_s: float) -> None:
        """Add the interval's energy to the lamps' meters and report it."""
        self.energy += lights[:, 0] * dt_s / 3600
        lights[:, 1] = self.energy


def round_columns(kind: Kind, array: F64) -> None:
    """Round each column to its metric's resolution, in place."""
    for j, name in enumerate(METRICS[kind]):
        array[:, j] = np.round(array[:, j], DECIMALS[name])
