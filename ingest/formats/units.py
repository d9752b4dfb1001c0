"""Unit names and conversions to the catalog's units, shared by the mappings and SenML.

A conversion is linear: ``catalog_value = value * scale + offset``. The SenML names are
those of the SenML units registry (RFC 8428 section 12.1, RFC 8798); the others are the
symbols the catalog itself uses, plus a few common vendors' spellings.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from devices.catalog import METRICS

Linear = tuple[float, float]
"""(scale, offset)."""

CATALOG_UNITS: Final[Mapping[str, str]] = MappingProxyType({m.name: m.unit for m in METRICS})
"""Metric name -> unit symbol, as the catalog ships it."""

_SAME: Final[Linear] = (1.0, 0.0)

_SPELLINGS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "Cel": "°C",
        "degC": "°C",
        "%RH": "%",
        "ug/m3": "µg/m³",
        "μg/m³": "µg/m³",  # GREEK SMALL LETTER MU, not MICRO SIGN
        "dBA": "dB(A)",
        "/": "1",
        "count": "1",
        "m3/s": "m³/s",
        "W/m2": "W/m²",
        "deg": "°",
    }
)
"""Other names of a catalog unit."""

_FACTORS: Final[Mapping[tuple[str, str], Linear]] = MappingProxyType(
    {
        ("kW", "W"): (1e3, 0.0),
        ("W", "kW"): (1e-3, 0.0),
        ("kWh", "Wh"): (1e3, 0.0),
        ("Wh", "kWh"): (1e-3, 0.0),
        ("kJ", "kWh"): (1 / 3600, 0.0),
        ("J", "Wh"): (1 / 3600, 0.0),
        ("mV", "V"): (1e-3, 0.0),
        ("mA", "A"): (1e-3, 0.0),
        ("K", "°C"): (1.0, -273.15),
        ("°F", "°C"): (5 / 9, -160 / 9),
        ("degF", "°C"): (5 / 9, -160 / 9),
        ("Pa", "hPa"): (1e-2, 0.0),
        ("kPa", "hPa"): (10.0, 0.0),
        ("mbar", "hPa"): (1.0, 0.0),
        ("ppm", "ppb"): (1e3, 0.0),
        ("m/s", "km/h"): (3.6, 0.0),
        ("km/h", "m/s"): (1 / 3.6, 0.0),
        ("mm", "m"): (1e-3, 0.0),
        ("cm", "m"): (1e-2, 0.0),
        ("m", "mm"): (1e3, 0.0),
        ("cm", "mm"): (10.0, 0.0),
        ("/", "%"): (100.0, 0.0),
        ("kg/m3", "µg/m³"): (1e9, 0.0),
    }
)


def conversion(unit: str, catalog_unit: str) -> Linear | None:
    """How to turn a value in ``unit`` into ``catalog_unit``, or None if it cannot be."""
    canonical = _SPELLINGS.get(unit, unit)
    if canonical == catalog_unit:
        return _SAME
    return _FACTORS.get((unit, catalog_unit)) or _FACTORS.get((canonical, catalog_unit))
