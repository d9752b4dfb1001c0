"""What healthy devices measure: daily and weekly rhythms, the sun, and noise.

Each model is a pure function of the device, the instant and a random generator, so a
seed reproduces a run. State that accumulates (a lamp's energy) lives in ``DeviceState``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np

from devices.catalog import Kind
from simulators.city import SimDevice

CITY_TZ = ZoneInfo("America/Chicago")


def sun_elevation_deg(when: datetime, latitude: float, longitude: float) -> float:
    """The sun's elevation above the horizon (NOAA's low-precision formulas, ±0.5°)."""
    utc = when.astimezone(UTC)
    day = utc.timetuple().tm_yday
    hours = utc.hour + utc.minute / 60 + utc.second / 3600
    gamma = 2 * math.pi / 365 * (day - 1 + (hours - 12) / 24)
    decl = (
        0.006918
        - 0.399912 * math.cos(gamma)
        + 0.070257 * math.sin(gamma)
        - 0.006758 * math.cos(2 * gamma)
        + 0.000907 * math.sin(2 * gamma)
        - 0.002697 * math.cos(3 * gamma)
        + 0.00148 * math.sin(3 * gamma)
    )
    eqtime = 229.18 * (
        0.000075
        + 0.001868 * math.cos(gamma)
        - 0.032077 * math.sin(gamma)
        - 0.014615 * math.cos(2 * gamma)
        - 0.040849 * math.sin(2 * gamma)
    )
    solar_minutes = hours * 60 + eqtime + 4 * longitude
    hour_angle = math.radians(solar_minutes / 4 - 180)
    lat = math.radians(latitude)
    cos_zenith = math.sin(lat) * math.sin(decl) + math.cos(lat) * math.cos(decl) * math.cos(
        hour_angle
    )
    return 90 - math.degrees(math.acos(max(-1.0, min(1.0, cos_zenith))))


@dataclass(slots=True)
class DeviceState:
    energy_wh: float = 0.0
    last_s: float | None = None


def _rush(hour: float, weekday: bool) -> float:
    """0..1: how busy the roads are at this local hour."""
    if not weekday:
        return 0.5 * math.exp(-(((hour - 14) / 4) ** 2))
    return math.exp(-(((hour - 8) / 1.3) ** 2)) + 0.9 * math.exp(-(((hour - 17.5) / 1.6) ** 2))


def streetlight(
    d: SimDevice, when: datetime, s: DeviceState, rng: np.random.Generator, dt_s: float
) -> dict[str, float]:
    elevation = sun_elevation_deg(when, d.latitude, d.longitude)
    on = elevation < -0.833
    local = when.astimezone(CITY_TZ)
    dim = (100.0 if local.hour >= 12 else 50.0) if on else 0.0
    power = d.rating_w * dim / 100 * (1 + rng.normal(0, 0.01)) if on else 0.4
    s.energy_wh += power * dt_s / 3600
    voltage = 120 + rng.normal(0, 1.0)
    lux = max(0.0, 100_000 * math.sin(math.radians(max(elevation, 0))) + rng.normal(0, 2) + 3)
    return {
        "power_w": round(power, 2),
        "energy_wh": round(s.energy_wh, 3),
        "lamp_on": float(on),
        "dim_pct": dim,
        "voltage_v": round(voltage, 2),
        "current_a": round(power / voltage, 4),
        "ambient_lux": round(lux, 1),
    }


def environment(
    d: SimDevice, when: datetime, s: DeviceState, rng: np.random.Generator, dt_s: float
) -> dict[str, float]:
    local = when.astimezone(CITY_TZ)
    hour = local.hour + local.minute / 60
    season = -math.cos(2 * math.pi * (local.timetuple().tm_yday - 20) / 365)  # -1 Jan, +1 Jul
    temp = 10 + 14 * season + 5 * math.cos(2 * math.pi * (hour - 15) / 24) + rng.normal(0, 0.3)
    rush = _rush(hour, local.weekday() < 5)
    pm25 = 7 + 10 * rush + abs(rng.normal(0, 1.5))
    return {
        "temperature_c": round(temp, 2),
        "humidity_pct": round(min(100, max(5, 65 - 1.5 * (temp - 10) + rng.normal(0, 2))), 1),
        "pressure_hpa": round(
            1013 + 6 * math.sin(when.timestamp() / 86400 / 3) + rng.normal(0, 0.3), 1
        ),
        "pm2_5_ugm3": round(pm25, 1),
        "pm10_ugm3": round(1.7 * pm25 + abs(rng.normal(0, 2)), 1),
        "no2_ppb": round(12 + 25 * rush + abs(rng.normal(0, 2)), 1),
        "o3_ppb": round(
            max(0, 20 + 25 * math.exp(-(((hour - 15) / 3) ** 2)) - 8 * rush + rng.normal(0, 2)), 1
        ),
        "noise_dba": round(48 + 20 * rush + rng.normal(0, 1.5), 1),
    }


def traffic(
    d: SimDevice, when: datetime, s: DeviceState, rng: np.random.Generator, dt_s: float
) -> dict[str, float]:
    local = when.astimezone(CITY_TZ)
    rush = _rush(local.hour + local.minute / 60, local.weekday() < 5)
    occupancy = min(95.0, max(0.0, 3 + 45 * rush + rng.normal(0, 2)))
    volume = max(0, round((5 + 60 * rush) * dt_s / 60 + rng.normal(0, 2)))
    speed = max(3.0, d.free_flow_kmh * (1 - 0.7 * occupancy / 100) + rng.normal(0, 2))
    return {
        "speed_kmh": round(speed, 1),
        "volume_veh": float(volume),
        "occupancy_pct": round(occupancy, 1),
    }


MODELS = {Kind.STREETLIGHT: streetlight, Kind.ENVIRONMENT: environment, Kind.TRAFFIC: traffic}
