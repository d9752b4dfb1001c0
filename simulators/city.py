"""A simulated city: gateways and their devices at plausible places, from a seed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from devices.catalog import Kind

CHICAGO = (41.88, -87.63)
"""The default city centre (latitude, longitude)."""
_SPAN = (0.18, 0.16)  # half-height, half-width in degrees: roughly the city's extent


@dataclass(frozen=True, slots=True)
class SimDevice:
    device_id: str
    kind: Kind
    latitude: float
    longitude: float
    rating_w: float = 0.0
    """Streetlights: the lamp's rated power at 100 % dimming."""
    free_flow_kmh: float = 0.0
    """Traffic detectors: the road segment's free-flow speed."""


@dataclass(frozen=True, slots=True)
class SimGateway:
    gateway_id: str
    devices: tuple[SimDevice, ...]


def build_city(
    *,
    seed: int = 1,
    streetlights: int = 30,
    environment: int = 6,
    traffic: int = 6,
    gateways: int = 3,
    center: tuple[float, float] = CHICAGO,
) -> list[SimGateway]:
    """Devices scattered around ``center``, dealt to gateways by proximity (west to east)."""
    rng = np.random.default_rng(seed)
    devices: list[SimDevice] = []
    for kind, count, prefix in (
        (Kind.STREETLIGHT, streetlights, "sl"),
        (Kind.ENVIRONMENT, environment, "env"),
        (Kind.TRAFFIC, traffic, "tr"),
    ):
        lat = center[0] + rng.uniform(-_SPAN[0], _SPAN[0], count)
        lon = center[1] + rng.uniform(-_SPAN[1], _SPAN[1], count)
        rating = rng.choice([60.0, 90.0, 120.0, 150.0], count)
        free_flow = rng.choice([40.0, 50.0, 70.0, 90.0], count)
        for i in range(count):
            devices.append(
                SimDevice(
                    f"{prefix}-{i:06d}",
                    kind,
                    round(float(lat[i]), 6),
                    round(float(lon[i]), 6),
                    float(rating[i]),
                    float(free_flow[i]),
                )
            )
    n = max(1, min(gateways, len(devices)))
    order = sorted(range(len(devices)), key=lambda i: (devices[i].longitude, devices[i].device_id))
    groups = np.array_split(np.array(order, dtype=np.int64), n)
    return [
        SimGateway(f"gw-{g:04d}", tuple(devices[i] for i in sorted(group.tolist())))
        for g, group in enumerate(groups)
    ]
