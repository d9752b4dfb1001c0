"""The metric catalog: every metric a device may report, its unit and valid range.

Metric names and ids are part of the gateway contract v1: an id never changes meaning
and is never reused. Units follow the FIWARE Smart Data Models named in ``fiware``
(docs/devices.md); ``unit_code`` is the UN/CEFACT Common Code FIWARE uses.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from types import MappingProxyType


class Kind(enum.StrEnum):
    """What a device is; it decides which metrics the device may report."""

    STREETLIGHT = "streetlight"
    ENVIRONMENT = "environment"
    TRAFFIC = "traffic"


@dataclass(frozen=True, slots=True)
class Metric:
    """One metric of the catalog. ``low``/``high`` bound the physically valid values."""

    id: int
    name: str
    kind: Kind
    unit: str
    unit_code: str
    low: float
    high: float
    fiware: str
    description: str


def _m(
    id_: int,
    name: str,
    kind: Kind,
    unit: str,
    code: str,
    low: float,
    high: float,
    fiware: str,
    description: str,
) -> Metric:
    return Metric(id_, name, kind, unit, code, low, high, fiware, description)


_S, _E, _T = Kind.STREETLIGHT, Kind.ENVIRONMENT, Kind.TRAFFIC

METRICS: tuple[Metric, ...] = (
    _m(1, "power_w", _S, "W", "WTT", 0, 2_000, "Streetlight.powerConsumption", "active power"),
    _m(
        2,
        "energy_wh",
        _S,
        "Wh",
        "WHR",
        0,
        1e10,
        "StreetlightControlCabinet.energyConsumed",
        "cumulative energy since installation",
    ),
    _m(3, "lamp_on", _S, "1", "C62", 0, 1, "Streetlight.powerState", "1 when the lamp is lit"),
    _m(4, "dim_pct", _S, "%", "P1", 0, 100, "Streetlight.illuminanceLevel", "dimming level"),
    _m(
        5,
        "voltage_v",
        _S,
        "V",
        "VLT",
        0,
        500,
        "StreetlightControlCabinet.voltage",
        "mains voltage at the lamp",
    ),
    _m(
        6,
        "current_a",
        _S,
        "A",
        "AMP",
        0,
        20,
        "StreetlightControlCabinet.intensity",
        "mains current",
    ),
    _m(
        7,
        "ambient_lux",
        _S,
        "lx",
        "LUX",
        0,
        200_000,
        "Streetlight.illuminanceLevel",
        "ambient illuminance at the photocell",
    ),
    _m(
        8,
        "temperature_c",
        _E,
        "°C",
        "CEL",
        -60,
        70,
        "AirQualityObserved.temperature",
        "air temperature",
    ),
    _m(
        9,
        "humidity_pct",
        _E,
        "%",
        "P1",
        0,
        100,
        "AirQualityObserved.relativeHumidity",
        "relative humidity (FIWARE uses 0..1)",
    ),
    _m(
        10,
        "pressure_hpa",
        _E,
        "hPa",
        "A97",
        800,
        1_100,
        "WeatherObserved.atmosphericPressure",
        "air pressure",
    ),
    _m(11, "pm2_5_ugm3", _E, "µg/m³", "GQ", 0, 1_000, "AirQualityObserved.pm2_5", "PM2.5"),
    _m(12, "pm10_ugm3", _E, "µg/m³", "GQ", 0, 2_000, "AirQualityObserved.pm10", "PM10"),
    _m(13, "no2_ppb", _E, "ppb", "61", 0, 2_000, "AirQualityObserved.no2", "nitrogen dioxide"),
    _m(14, "o3_ppb", _E, "ppb", "61", 0, 1_000, "AirQualityObserved.o3", "ozone"),
    _m(
        15,
        "noise_dba",
        _E,
        "dB(A)",
        "2N",
        0,
        160,
        "NoiseLevelObserved.LAeq",
        "A-weighted equivalent sound level",
    ),
    _m(
        16,
        "speed_kmh",
        _T,
        "km/h",
        "KMH",
        0,
        300,
        "TrafficFlowObserved.averageVehicleSpeed",
        "average vehicle speed",
    ),
    _m(
        17,
        "volume_veh",
        _T,
        "1",
        "C62",
        0,
        100_000,
        "TrafficFlowObserved.intensity",
        "vehicles counted in the interval",
    ),
    _m(
        18,
        "occupancy_pct",
        _T,
        "%",
        "P1",
        0,
        100,
        "TrafficFlowObserved.occupancy",
        "share of time the detector is occupied (FIWARE uses 0..1)",
    ),
)

BY_NAME: MappingProxyType[str, Metric] = MappingProxyType({m.name: m for m in METRICS})
BY_ID: MappingProxyType[int, Metric] = MappingProxyType({m.id: m for m in METRICS})


def metrics_of(kind: Kind) -> tuple[Metric, ...]:
    """The metrics a device of ``kind`` reports, in catalog order."""
    return tuple(m for m in METRICS if m.kind is kind)
