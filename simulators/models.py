"""What one healthy device measures at one instant: the vectorised models of
``simulators.physics`` applied to a single device.

For tests and tools that want a device's readings one at a time; the simulator itself
computes every device of a kind in one call (``simulators.generator``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from devices.catalog import Kind
from simulators import physics
from simulators.city import CHICAGO_AREA, SimDevice

CITY_TZ = CHICAGO_AREA.zone()
_WEATHER = physics.Weather(seed=1)


def sun_elevation_deg(when: datetime, latitude: float, longitude: float) -> float:
    """The sun's elevation above the horizon (NOAA's low-precision formulas, ±0.5°)."""
    return float(physics.sun_elevation(when.timestamp(), latitude, longitude))


@dataclass(slots=True)
class DeviceState:
    energy_wh: float = 0.0


@functools.lru_cache(maxsize=4096)
def _fleet(d: SimDevice) -> physics.Fleet:
    return physics.Fleet(d.kind, [d], 0, CHICAGO_AREA)


def _one(
    d: SimDevice, when: datetime, s: DeviceState, rng: np.random.Generator, dt_s: float
) -> dict[str, float]:
    f = _fleet(d)
    t = when.timestamp()
    at = physics.Instant.at(t, CITY_TZ)
    out = np.empty((1, len(f.metrics)))
    if d.kind is Kind.STREETLIGHT:
        physics.streetlights(f, at, _WEATHER.at(t), rng, out)
        s.energy_wh += float(out[0, 0]) * dt_s / 3600
        out[0, 1] = s.energy_wh
    elif d.kind is Kind.ENVIRONMENT:
        physics.environment(f, at, _WEATHER.at(t), rng, out)
    else:
        physics.traffic(f, at, dt_s, rng, out)
    physics.round_columns(d.kind, out)
    return dict(zip(f.metrics, out[0].tolist(), strict=True))


streetlight = traffic = _one
