"""Lookup arrays derived from the catalog, for vectorised checks and the kernels.

The one place a catalog becomes arrays: indexed by metric id or kind code, so a batch's
checks run over NumPy columns with no Python per value. ``Tables.of`` builds them for
any catalog version (the ingester rebuilds them when a new version is applied);
``TABLES`` and the module-level names are the shipped catalog's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

from devices.catalog import DEFAULT, Catalog

METRIC_SLOTS = 64
"""Series id = device key x 64 + metric id: dense for the kernels' state arrays; metric
ids are below it (the catalog's schema says so), and every table below has this size."""

KIND_CODES: dict[str | None, int] = {None: 0}
"""A small integer per kind (0: not announced), as the registry keeps it per device.
Codes are handed out as kinds first appear and never change within a process, so that
a new catalog version never renumbers a device's kind."""


def kind_code(kind: str | None) -> int:
    """The code of ``kind``, handing out the next one to a kind not seen before."""
    code = KIND_CODES.get(kind)
    if code is None:
        code = KIND_CODES[kind] = len(KIND_CODES)
    return code


def kind_name(code: int) -> str | None:
    """The kind a code stands for."""
    return next((k for k, c in KIND_CODES.items() if c == code), None)


@dataclass(frozen=True, slots=True)
class Tables:
    """One catalog version as lookups: metric ids by name, bounds and kinds by metric id."""

    version: int
    kinds: frozenset[str]
    metric_ids: Mapping[str, int]
    low: npt.NDArray[np.float64]
    """Each metric's lowest valid value, by metric id (NaN: no such metric)."""
    high: npt.NDArray[np.float64]
    """Each metric's highest valid value, by metric id."""
    metric_kind: npt.NDArray[np.int8]
    """Each metric's kind code, by metric id."""
    metric_names: tuple[str, ...]
    metric_units: tuple[str, ...]

    @classmethod
    def of(cls, catalog: Catalog) -> Tables:
        """The lookups of ``catalog``."""
        low, high = np.full(METRIC_SLOTS, np.nan), np.full(METRIC_SLOTS, np.nan)
        kind = np.zeros(METRIC_SLOTS, dtype=np.int8)
        names, units = [""] * METRIC_SLOTS, [""] * METRIC_SLOTS
        for k in catalog.kinds:
            kind_code(k.value)
        for m in catalog.metrics:
            if not 0 < m.id < METRIC_SLOTS:
                raise ValueError(f"metric id {m.id} ({m.name}) must be in 1..{METRIC_SLOTS - 1}")
            low[m.id], high[m.id], kind[m.id] = m.low, m.high, kind_code(m.kind.value)
            names[m.id], units[m.id] = m.name, m.unit
        return cls(
            version=catalog.version,
            kinds=frozenset(k.value for k in catalog.kinds),
            metric_ids=MappingProxyType({m.name: m.id for m in catalog.metrics}),
            low=low,
            high=high,
            metric_kind=kind,
            metric_names=tuple(names),
            metric_units=tuple(units),
        )


TABLES = Tables.of(DEFAULT)
"""The shipped catalog's lookups."""
LOW, HIGH = TABLES.low, TABLES.high
