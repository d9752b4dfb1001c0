"""A simulated city: gateways and their devices at plausible places, from a seed.

Streetlights stand beside the streets of a grid (Chicago's: eight blocks to the mile),
traffic detectors on its arterials (every half mile) and on a few expressways,
environmental sensors anywhere, each knowing how near it is to an arterial. Everything
lies inside the city's bounding box and, in Chicago, west of the lake shore. Gateways
serve compact neighbourhoods: devices are dealt to them along a Z-order curve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from devices.catalog import Kind

F64 = npt.NDArray[np.float64]

CHICAGO = (41.88, -87.63)
"""The default city centre (latitude, longitude)."""

_M_PER_DEG_LAT = 111_045.0
_BLOCK_M = 201.17  # 1/8 mile: Chicago's block
_ARTERIAL_M = 4 * _BLOCK_M  # arterials every half mile


@dataclass(frozen=True, slots=True)
class Area:
    """Where a city lies: its bounding box, time zone, street-grid origin and lake shore."""

    name: str
    south: float
    north: float
    west: float
    east: float
    tz: str
    origin: tuple[float, float]
    shore: tuple[tuple[float, float], ...] = ()
    """(latitude, longitude) points of a shore the city lies west of; empty: no shore."""

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    def contains(self, lat: F64, lon: F64) -> npt.NDArray[np.bool_]:
        inside = (lat >= self.south) & (lat <= self.north) & (lon >= self.west)
        inside &= lon <= self.east
        if self.shore:
            s_lat, s_lon = np.array(self.shore).T
            inside &= lon < np.interp(lat, s_lat, s_lon) - 0.002  # 150 m inland
        return inside


CHICAGO_AREA = Area(
    name="Chicago",
    south=41.645,
    north=42.020,
    west=-87.800,
    east=-87.524,
    tz="America/Chicago",
    origin=(41.8820, -87.6278),  # State & Madison, where the street numbers start
    shore=(
        (41.645, -87.524),
        (41.705, -87.524),
        (41.740, -87.545),
        (41.780, -87.573),
        (41.820, -87.600),
        (41.860, -87.608),
        (41.900, -87.620),
        (41.940, -87.637),
        (41.980, -87.652),
        (42.020, -87.668),
    ),
)


def area_around(center: tuple[float, float], *, tz: str = "America/Chicago") -> Area:
    """A city of Chicago's size around ``center``, without a shore."""
    if center == CHICAGO:
        return CHICAGO_AREA
    lat, lon = center
    return Area("city", lat - 0.18, lat + 0.18, lon - 0.16, lon + 0.16, tz, center)


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
    lanes: int = 0
    """Traffic detectors: lanes the detector counts."""
    near_road: float = 0.0
    """0..1: how much arterial traffic reaches the device (1 on the road itself)."""


@dataclass(frozen=True, slots=True)
class SimGateway:
    gateway_id: str
    devices: tuple[SimDevice, ...]


def _scatter(rng: np.random.Generator, area: Area, n: int) -> tuple[F64, F64]:
    """``n`` points uniformly inside ``area`` (rejection sampling, vectorised)."""
    lat, lon = np.empty(0), np.empty(0)
    while len(lat) < n:
        k = max(16, int((n - len(lat)) * 1.6))
        a = rng.uniform(area.south, area.north, k)
        b = rng.uniform(area.west, area.east, k)
        ok = area.contains(a, b)
        lat, lon = np.r_[lat, a[ok]], np.r_[lon, b[ok]]
    return lat[:n], lon[:n]


def _snap(
    rng: np.random.Generator, area: Area, lat: F64, lon: F64, spacing_m: float, offset_m: float
) -> tuple[F64, F64]:
    """Move each point onto the nearest street of a grid (a north-south or an east-west
    one, at random), ``offset_m`` to its side."""
    dlat = spacing_m / _M_PER_DEG_LAT
    dlon = spacing_m / (_M_PER_DEG_LAT * math.cos(math.radians(area.origin[0])))
    side = rng.choice([-1.0, 1.0], len(lat)) * offset_m / _M_PER_DEG_LAT
    ns = rng.random(len(lat)) < 0.5
    o_lat, o_lon = area.origin
    snapped_lon = o_lon + np.round((lon - o_lon) / dlon) * dlon + side * 1.34
    snapped_lat = o_lat + np.round((lat - o_lat) / dlat) * dlat + side
    lat2, lon2 = np.where(ns, lat, snapped_lat), np.where(ns, snapped_lon, lon)
    keep = area.contains(lat2, lon2)  # a street beyond the shore: stay where it was
    return np.where(keep, lat2, lat), np.where(keep, lon2, lon)


def _arterial_distance_m(area: Area, lat: F64, lon: F64) -> F64:
    dlat = _ARTERIAL_M / _M_PER_DEG_LAT
    cos = math.cos(math.radians(area.origin[0]))
    dlon = _ARTERIAL_M / (_M_PER_DEG_LAT * cos)
    y = (lat - area.origin[0]) / dlat
    x = (lon - area.origin[1]) / dlon
    return np.minimum(np.abs(y - np.round(y)), np.abs(x - np.round(x))) * _ARTERIAL_M


def _z_order(area: Area, lat: F64, lon: F64) -> npt.NDArray[np.int64]:
    """Morton codes of a 1024 x 1024 grid over the area: near in code, near in space."""
    y = np.clip(((lat - area.south) / (area.north - area.south) * 1023), 0, 1023).astype(np.int64)
    x = np.clip(((lon - area.west) / (area.east - area.west) * 1023), 0, 1023).astype(np.int64)
    code = np.zeros(len(lat), dtype=np.int64)
    for bit in range(10):
        code |= ((x >> bit) & 1) << (2 * bit)
        code |= ((y >> bit) & 1) << (2 * bit + 1)
    return code


def build_city(
    *,
    seed: int = 1,
    streetlights: int = 30,
    environment: int = 6,
    traffic: int = 6,
    gateways: int = 3,
    center: tuple[float, float] = CHICAGO,
    area: Area | None = None,
) -> list[SimGateway]:
    """The city's gateways, each with the devices of one neighbourhood, from ``seed``.

    Gateways get equal shares of devices (± 1); a gateway's devices are listed
    streetlights first, then environmental sensors, then traffic detectors, by id.
    """
    area = area or area_around(center)
    rng = np.random.default_rng(seed)
    devices: list[SimDevice] = []

    lat, lon = _scatter(rng, area, streetlights)
    lat, lon = _snap(rng, area, lat, lon, _BLOCK_M, 10.0)
    rating = rng.choice(
        [40.0, 60.0, 90.0, 120.0, 150.0], streetlights, p=[0.2, 0.3, 0.25, 0.15, 0.1]
    )
    for i in range(streetlights):
        devices.append(
            SimDevice(
                f"sl-{i:06d}",
                Kind.STREETLIGHT,
                round(float(lat[i]), 6),
                round(float(lon[i]), 6),
                rating_w=float(rating[i]),
            )
        )

    lat, lon = _scatter(rng, area, environment)
    near = np.exp(-_arterial_distance_m(area, lat, lon) / 150.0)
    for i in range(environment):
        devices.append(
            SimDevice(
                f"env-{i:06d}",
                Kind.ENVIRONMENT,
                round(float(lat[i]), 6),
                round(float(lon[i]), 6),
                near_road=round(float(near[i]), 3),
            )
        )

    lat, lon = _scatter(rng, area, traffic)
    lat, lon = _snap(rng, area, lat, lon, _ARTERIAL_M, 0.0)
    expressway = rng.random(traffic) < 0.15
    free_flow = np.where(expressway, rng.choice([88.0, 97.0, 105.0], traffic), 0.0)
    free_flow = np.where(expressway, free_flow, rng.choice([40.0, 48.0, 56.0], traffic))
    lanes = np.where(expressway, rng.integers(3, 5, traffic), rng.integers(1, 3, traffic))
    for i in range(traffic):
        devices.append(
            SimDevice(
                f"tr-{i:06d}",
                Kind.TRAFFIC,
                round(float(lat[i]), 6),
                round(float(lon[i]), 6),
                free_flow_kmh=float(free_flow[i]),
                lanes=int(lanes[i]),
                near_road=1.0,
            )
        )

    n = max(1, min(gateways, len(devices)))
    codes = _z_order(
        area, np.array([d.latitude for d in devices]), np.array([d.longitude for d in devices])
    )
    order = np.lexsort((np.arange(len(devices)), codes))
    groups = np.array_split(order, n)
    return [
        SimGateway(f"gw-{g:04d}", tuple(devices[i] for i in sorted(group.tolist())))
        for g, group in enumerate(groups)
    ]
