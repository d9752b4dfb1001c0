"""The metric catalog: every kind of device, every metric it may report, unit and valid range.

The catalog is data: a TOML document (``devices/catalog.toml`` ships with citytel; format
in docs/devices.md) validated by ``devices.catalog_model``. This module reads a document
into a ``Catalog`` (the lookups the code needs) and loads the shipped one as ``DEFAULT``.
The module-level names (``METRICS``, ``BY_NAME``, ``BY_ID``, ``metrics_of``, ``Kind``'s
members) describe that shipped catalog; the catalog in force is the newest version stored
in the database (``storage.catalog.load_catalog``).

Metric names and ids are part of the gateway contract v1: an id never changes meaning
and is never reused. Units follow the FIWARE Smart Data Models named in ``fiware``;
``unit_code`` is the UN/CEFACT Common Code FIWARE uses.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import ClassVar

from devices.catalog_model import CatalogDocument, InvalidCatalog, KindSpec, parse


class _KindType(type):
    def __iter__(cls) -> Iterator[Kind]:
        """The shipped catalog's kinds, in document order."""
        return iter(DEFAULT.kinds)

    def __len__(cls) -> int:
        return len(DEFAULT.kinds)


class Kind(str, metaclass=_KindType):
    """What a device is, by its catalog id; it decides which metrics the device may report.

    An open set: any catalog may define kinds. A ``Kind`` is its id as a ``str`` (equal to
    and hashed like it); equal kinds are the same object, so ``is`` compares them too.
    ``Kind.STREETLIGHT``, ``Kind.ENVIRONMENT`` and ``Kind.TRAFFIC`` name the kinds the
    simulators model; iterating over ``Kind`` gives the shipped catalog's kinds.
    """

    __slots__ = ()
    _interned: ClassVar[dict[str, Kind]] = {}
    STREETLIGHT: ClassVar[Kind]
    ENVIRONMENT: ClassVar[Kind]
    TRAFFIC: ClassVar[Kind]

    def __new__(cls, value: str) -> Kind:
        found = cls._interned.get(value)
        if found is None:
            found = cls._interned[str(value)] = super().__new__(cls, value)
        return found

    @property
    def value(self) -> str:
        """The kind's id as a plain ``str`` (as an enum member's ``value`` was)."""
        return str.__str__(self)

    def __repr__(self) -> str:
        return f"Kind({self.value!r})"


Kind.STREETLIGHT = Kind("streetlight")
Kind.ENVIRONMENT = Kind("environment")
Kind.TRAFFIC = Kind("traffic")


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
    counter: bool = False
    """Cumulative (energy since installation): rollups and detectors work on increments."""
    daily_rhythm: bool = False
    """Its usual level depends on the hour of the day."""
    public: bool = False
    """Published as open data, aggregated (docs/api.md)."""


@dataclass(frozen=True, slots=True)
class Catalog:
    """A validated catalog document and the lookups derived from it, in one place."""

    document: CatalogDocument
    version: int = 0
    """Its version in the database; 0 for a document not stored (yet)."""
    metrics: tuple[Metric, ...] = field(init=False)
    kinds: tuple[Kind, ...] = field(init=False)
    by_name: Mapping[str, Metric] = field(init=False)
    by_id: Mapping[int, Metric] = field(init=False)
    kind_specs: Mapping[str, KindSpec] = field(init=False)

    def __post_init__(self) -> None:
        metrics = tuple(
            Metric(**(m.model_dump() | {"kind": Kind(m.kind)})) for m in self.document.metrics
        )
        derived = {
            "metrics": metrics,
            "kinds": tuple(Kind(k.id) for k in self.document.kinds),
            "by_name": MappingProxyType({m.name: m for m in metrics}),
            "by_id": MappingProxyType({m.id: m for m in metrics}),
            "kind_specs": MappingProxyType({k.id: k for k in self.document.kinds}),
        }
        for name, value in derived.items():
            object.__setattr__(self, name, value)  # a frozen dataclass's derived fields

    def metrics_of(self, kind: str) -> tuple[Metric, ...]:
        """The metrics a device of ``kind`` reports, in catalog order."""
        return tuple(m for m in self.metrics if m.kind == kind)

    def public_metrics(self) -> tuple[Metric, ...]:
        """The metrics published as open data."""
        return tuple(m for m in self.metrics if m.public)


def load(path: str | Path) -> CatalogDocument:
    """A catalog document from a TOML file; ``InvalidCatalog`` says what is wrong."""
    return parse(Path(path).read_text(encoding="utf-8"))


def shipped_document() -> CatalogDocument:
    """The catalog shipped with citytel (``devices/catalog.toml``)."""
    text = resources.files("devices").joinpath("catalog.toml").read_text(encoding="utf-8")
    return parse(text)


DEFAULT = Catalog(shipped_document())
"""The shipped catalog."""

METRICS: tuple[Metric, ...] = DEFAULT.metrics
BY_NAME: Mapping[str, Metric] = DEFAULT.by_name
BY_ID: Mapping[int, Metric] = DEFAULT.by_id


def metrics_of(kind: str) -> tuple[Metric, ...]:
    """The metrics a device of ``kind`` reports in the shipped catalog, in catalog order."""
    return DEFAULT.metrics_of(kind)


__all__ = [
    "BY_ID",
    "BY_NAME",
    "DEFAULT",
    "METRICS",
    "Catalog",
    "InvalidCatalog",
    "Kind",
    "Metric",
    "load",
    "metrics_of",
    "shipped_document",
]
