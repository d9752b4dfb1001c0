"""Lookup arrays derived from the catalog, for vectorised checks and the kernels.

The one place the catalog becomes arrays: indexed by metric id or kind code, so a
batch's checks run over NumPy columns with no Python per value.
"""

from __future__ import annotations

import numpy as np

from devices.catalog import METRICS, Kind

METRIC_SLOTS = 64
"""Series id = device key x 64 + metric id: dense for the kernels' state arrays."""

KIND_CODES: dict[str | None, int] = {None: 0} | {k.value: i + 1 for i, k in enumerate(Kind)}
"""A small integer per kind (0: not announced), as the registry keeps it per device."""

KIND_NAMES: dict[int, str | None] = {code: kind for kind, code in KIND_CODES.items()}

METRIC_IDS: dict[str, int] = {m.name: m.id for m in METRICS}

_SIZE = max(m.id for m in METRICS) + 1
LOW = np.full(_SIZE, np.nan)
"""Each metric's lowest valid value, by metric id (NaN: no such metric)."""
HIGH = np.full(_SIZE, np.nan)
"""Each metric's highest valid value, by metric id."""
METRIC_KIND = np.zeros(_SIZE, dtype=np.int8)
"""Each metric's kind code, by metric id."""
METRIC_NAMES = [""] * _SIZE
METRIC_UNITS = [""] * _SIZE
for _m in METRICS:
    LOW[_m.id], HIGH[_m.id] = _m.low, _m.high
    METRIC_KIND[_m.id] = KIND_CODES[_m.kind.value]
    METRIC_NAMES[_m.id], METRIC_UNITS[_m.id] = _m.name, _m.unit
assert _SIZE <= METRIC_SLOTS, "metric ids must fit the series id's slots"
