"""A healthy simulated city as value arrays, from the simulators' in-process generator."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

import numpy as np
import numpy.typing as npt

from devices.catalog import BY_NAME
from simulators.city import build_city
from simulators.generator import CityGenerator

START = datetime(2025, 11, 17, 6, tzinfo=UTC)  # a Monday, midnight in the city
CITY_OFFSET_S = -6 * 3600  # Chicago in November


@dataclass(frozen=True, slots=True)
class Values:
    time: npt.NDArray[np.int64]  # Unix µs
    device: npt.NDArray[np.int64]
    value: npt.NDArray[np.float64]

    def of(self, device: int) -> npt.NDArray[np.float64]:
        return self.value[self.device == device]


@cache
def healthy(metric: str, *, days: int = 5, interval_s: int = 300, devices: int = 6) -> Values:
    """One metric of every device of its kind, in event-time order (Mon 00:00 local on)."""
    kind = BY_NAME[metric].kind.value
    counts = {k: devices if k == kind else 0 for k in ("streetlight", "environment", "traffic")}
    city = build_city(
        seed=3,
        streetlights=counts["streetlight"],
        environment=counts["environment"],
        traffic=counts["traffic"],
        gateways=1,
    )
    gen = CityGenerator(
        city, start=START, end=START + timedelta(days=days), interval_s=interval_s, seed=3
    )
    keys = {d.device_id: i for i, d in enumerate(city[0].devices)}
    rows = [
        (r.ts * 1000, keys[r.device_id], r.metrics[metric])
        for m in gen.messages()
        for r in m.readings
    ]
    t, d, v = (np.array(c) for c in zip(*rows, strict=True))
    order = np.argsort(t, kind="stable")
    return Values(t[order].astype(np.int64), d[order].astype(np.int64), v[order].astype(float))
