"""Mappings from a source's decoded fields to catalog metrics, loaded from TOML.

A *source* is what the mapping is keyed by: a LoRaWAN application (ChirpStack application
id, The Things Stack ``application@tenant`` or application id), a Sparkplug group, a SenML
gateway. With no mapping for a source, a field named like a catalog metric maps to it and
every other field is refused as unmapped. Example (docs/contract.md has the full form)::

    [source."17c82e96-be03-4f38-aef3-f83d48582d97"]
    gateway = "parking-north"
    kind = "environment"
    ignore = ["status_text"]
    devices = { "0101010101010101" = "env-0001" }

    [source."17c82e96-be03-4f38-aef3-f83d48582d97".fields]
    temperature = "temperature_c"
    temp_f = { metric = "temperature_c", unit = "°F" }
    power_kw = { metric = "power_w", scale = 1000 }
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ingest.formats import FormatReason, Refusal
from ingest.formats.units import CATALOG_UNITS, conversion
from ingest.limits import Limits
from ingest.reasons import Reason

MAX_DEPTH = 8
"""Decoded objects nest at most this deep; deeper parts are refused."""
MAX_FIELDS = 256
"""At most this many fields per decoded object; a bigger object is refused whole."""


class FieldRule(BaseModel):
    """One decoded field mapped to a catalog metric, converted ``value * scale + offset``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str
    unit: str | None = None
    """The field's unit; converted to the catalog metric's unit (units.py)."""
    scale: float = 1.0
    offset: float = 0.0


class SourceMapping(BaseModel):
    """How one source's fields, devices and gateway are named in citytel."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gateway: str | None = None
    """The gateway id its readings are stored under (default: per format)."""
    kind: str | None = None
    """The kind announced for its devices on a LoRaWAN join (default: announce none)."""
    link_metrics: bool = True
    """Keep the best gateway's RSSI/SNR as device metrics (LoRaWAN)."""
    rssi_metric: str = "rssi_dbm"
    snr_metric: str = "snr_db"
    battery_metric: str = "battery_pct"
    margin_metric: str = "margin_db"
    fields: dict[str, str | FieldRule] = Field(default_factory=dict)
    ignore: frozenset[str] = frozenset()
    """Fields deliberately not stored: neither mapped nor refused."""
    devices: dict[str, str] = Field(default_factory=dict)
    """Renames: the format's default device id -> the device id stored."""


class MappingFile(BaseModel):
    """A mapping document: ``[source."<key>"]`` tables."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: dict[str, SourceMapping] = Field(default_factory=dict)


def load_mapping(path: Path | str) -> MappingFile:
    """Read and validate a mapping file (TOML)."""
    return MappingFile.model_validate(tomllib.loads(Path(path).read_text(encoding="utf-8")))


@dataclass(frozen=True, slots=True)
class Target:
    metric: str
    scale: float
    offset: float


@dataclass(slots=True)
class Resolver:
    """Maps decoded fields of one source to catalog metrics; built once per source."""

    source: SourceMapping
    units: Mapping[str, str]
    _cache: dict[tuple[str, str | None], Target | Refusal | None] = field(default_factory=dict)

    def metrics(self, decoded: Any, prefix: str = "") -> tuple[dict[str, float], list[Refusal]]:
        """Catalog metrics from a decoded object (nested objects as ``a.b`` paths)."""
        if not isinstance(decoded, dict):
            kind = type(decoded).__name__
            return {}, [Refusal(Reason.INVALID_MESSAGE, f"decoded payload is a {kind}", prefix)]
        items = list(_flatten(decoded, prefix, 0))
        if len(items) > MAX_FIELDS:
            detail = f"more than {MAX_FIELDS} decoded fields"
            return {}, [Refusal(Reason.INVALID_MESSAGE, detail, prefix or None)]
        metrics: dict[str, float] = {}
        refusals: list[Refusal] = []
        for name, raw in items:
            self.add(name, raw, metrics, refusals)
        return metrics, refusals

    def add(
        self,
        name: str,
        raw: Any,
        metrics: dict[str, float],
        refusals: list[Refusal],
        unit: str | None = None,
    ) -> None:
        """Map one field into ``metrics``, or add why not to ``refusals``."""
        target = self.target(name, unit)
        if target is None:
            return
        if isinstance(target, Refusal):
            refusals.append(target)
            return
        if target.metric in metrics:
            detail = f"{name} maps to {target.metric}, already given by another field"
            refusals.append(Refusal(Reason.INVALID_READING, detail[:300], name[:200]))
            return
        value, problem = number(raw)
        if problem is not None:
            refusals.append(Refusal(problem[0], f"{name} = {problem[1]}", name))
            return
        converted = value * target.scale + target.offset
        if not math.isfinite(converted):
            refusals.append(Refusal(Reason.NOT_FINITE, f"{name} = {value!r} converted", name))
            return
        metrics[target.metric] = converted

    def target(self, name: str, unit: str | None = None) -> Target | Refusal | None:
        """Where field ``name`` goes: a target, a refusal, or None (ignored)."""
        key = (name, unit)
        if key not in self._cache:
            if len(self._cache) > 4 * MAX_FIELDS:
                self._cache.clear()  # bounded: hostile senders may invent names
            self._cache[key] = self._resolve(name, unit)
        return self._cache[key]

    def _resolve(self, name: str, unit: str | None) -> Target | Refusal | None:
        if name in self.source.ignore:
            return None
        rule = self.source.fields.get(name)
        if rule is None:
            rule = FieldRule(metric=name, unit=unit)
        elif isinstance(rule, str):
            rule = FieldRule(metric=rule, unit=unit)
        catalog_unit = self.units.get(rule.metric)
        if catalog_unit is None:
            detail = f"field {name!r} maps to no catalog metric"
            return Refusal(FormatReason.UNMAPPED_FIELD, detail[:300], name[:200])
        linear = (1.0, 0.0) if rule.unit is None else conversion(rule.unit, catalog_unit)
        if linear is None:
            detail = f"field {name!r} in {rule.unit!r}: not convertible to {catalog_unit!r}"
            return Refusal(FormatReason.BAD_UNIT, detail[:300], name[:200])
        scale, offset = linear
        return Target(rule.metric, scale * rule.scale, offset * rule.scale + rule.offset)


def number(raw: Any) -> tuple[float, tuple[str, str] | None]:
    """A field's value as a float, or (reason, detail) why it is not one."""
    if type(raw) is float and math.isfinite(raw):  # the common case, first
        return raw, None
    if isinstance(raw, bool):
        return float(raw), None
    if isinstance(raw, int | float):
        try:
            value = float(raw)
        except OverflowError:
            return 0.0, (Reason.NOT_FINITE, "an integer too large for a float")
        if not math.isfinite(value):
            return 0.0, (Reason.NOT_FINITE, repr(value))
        return value, None
    return 0.0, (FormatReason.INVALID_VALUE, f"a {type(raw).__name__}, not a number")


def _flatten(obj: dict[Any, Any], prefix: str, depth: int) -> Iterator[tuple[str, Any]]:
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            if depth + 1 >= MAX_DEPTH:
                yield name, value  # refused below as not a number
            else:
                yield from _flatten(value, f"{name}.", depth + 1)
        else:
            yield name, value


def resolvers(mapping: MappingFile | None, units: Mapping[str, str] | None = None) -> _Resolvers:
    """A lookup of per-source resolvers for ``mapping`` (None: no mapping)."""
    return _Resolvers(mapping or MappingFile(), CATALOG_UNITS if units is None else units)


@dataclass(slots=True)
class _Resolvers:
    mapping: MappingFile
    units: Mapping[str, str]
    _by_source: dict[str, Resolver] = field(default_factory=dict)
    _default: Resolver | None = None

    def get(self, *keys: str) -> Resolver:
        """The resolver of the first of ``keys`` the mapping names, else the default one."""
        for key in keys:
            source = self.mapping.source.get(key)
            if source is not None:
                if key not in self._by_source:
                    self._by_source[key] = Resolver(source, self.units)
                return self._by_source[key]
        if self._default is None:
            self._default = Resolver(SourceMapping(), self.units)
        return self._default


class MappedParser:
    """What every parser whose fields map to catalog metrics sets up the same way: the
    catalog's units, the mapping's resolvers, the limits and the topic prefix."""

    def __init__(
        self,
        *,
        mapping: MappingFile | None = None,
        units: Mapping[str, str] | None = None,
        limits: Limits | None = None,
        prefix: str = "",
    ) -> None:
        self._units = CATALOG_UNITS if units is None else units
        self._resolvers = resolvers(mapping, self._units)
        self._limits = limits or Limits()
        self._prefix = prefix
        self._known = frozenset(self._units)
