"""The catalog document's schema: kinds and metrics, validated by pydantic (docs/devices.md).

A catalog is a TOML document with a ``format`` number, a list of ``kinds`` and a list of
``metrics``. The checks here are those one document can fail on its own (unique ids and
names, known kinds, sane ranges); the rules between two versions (an id never changes
meaning) live with the stored versions, in ``storage.catalog``.
"""

from __future__ import annotations

import json
import tomllib
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

FORMAT = 1
"""The document format this code reads."""

Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]


class InvalidCatalog(ValueError):
    """A catalog document that is not TOML or does not follow the schema."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KindSpec(_Strict):
    """A kind of device: what it is and how its data may be published."""

    id: Name
    description: str
    fiware: str = Field(description="FIWARE Smart Data Model entity type, e.g. Streetlight")
    grid_deg: float = Field(
        gt=0,
        le=1,
        description="Open data rounds the device's latitude and longitude to this step",
    )
    counts_people: bool = Field(
        default=False,
        description="Its counts describe people: open data suppresses small counts",
    )


class MetricSpec(_Strict):
    """A metric: one value a device of its kind may report."""

    # below 64: a series id is device key x 64 + metric id (devices/tables.py METRIC_SLOTS)
    id: int = Field(gt=0, lt=64, description="Stable: never renumbered, never reused")
    name: Name
    kind: Name
    unit: str = Field(min_length=1)
    unit_code: str = Field(pattern=r"^[A-Z0-9]{2,3}$", description="UN/CEFACT Common Code")
    low: float
    high: float
    fiware: str = Field(description="FIWARE Smart Data Model attribute, Entity.attribute")
    description: str
    counter: bool = Field(
        default=False,
        description="Cumulative (energy since installation): work on increments",
    )
    daily_rhythm: bool = Field(default=False, description="Its usual level depends on the hour")
    public: bool = Field(default=False, description="Published as open data (aggregated)")

    @model_validator(mode="after")
    def _range(self) -> Self:
        if not self.low < self.high:
            raise ValueError(f"metric {self.name}: low ({self.low}) must be below high")
        return self


class CatalogDocument(_Strict):
    """A whole catalog: every kind and every metric, as one validated document."""

    format: int = Field(FORMAT, description="Document format; this code reads format 1")
    kinds: tuple[KindSpec, ...] = Field(min_length=1)
    metrics: tuple[MetricSpec, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.format != FORMAT:
            raise ValueError(f"format {self.format} is not supported (this citytel reads {FORMAT})")
        _unique("kind id", [k.id for k in self.kinds])
        _unique("metric id", [m.id for m in self.metrics])
        _unique("metric name", [m.name for m in self.metrics])
        kinds = {k.id for k in self.kinds}
        for m in self.metrics:
            if m.kind not in kinds:
                raise ValueError(f"metric {m.name}: kind {m.kind!r} is not among the kinds")
        return self

    def to_toml(self) -> str:
        """The document as TOML (what ``citytel catalog show`` prints)."""
        lines = [f"format = {self.format}"]
        for table, items in (("kinds", self.kinds), ("metrics", self.metrics)):
            for item in items:
                lines += ["", f"[[{table}]]"]
                lines += [f"{k} = {_toml_value(v)}" for k, v in item.model_dump().items()]
        return "\n".join(lines) + "\n"


def _unique(what: str, values: list[Any]) -> None:
    seen: set[Any] = set()
    for v in values:
        if v in seen:
            raise ValueError(f"two entries share the {what} {v!r}")
        seen.add(v)


def _toml_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    # a JSON string of a str is a valid TOML basic string
    return json.dumps(v, ensure_ascii=False)


def parse(text: str) -> CatalogDocument:
    """A catalog document from TOML text; ``InvalidCatalog`` says what is wrong."""
    try:
        return CatalogDocument.model_validate(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise InvalidCatalog(f"not TOML: {exc}") from exc
    except ValidationError as exc:
        raise InvalidCatalog(_explain(exc)) from exc


def from_json(data: object) -> CatalogDocument:
    """A catalog document from its JSON form (as stored and as the API takes it)."""
    try:
        return CatalogDocument.model_validate(data)
    except ValidationError as exc:
        raise InvalidCatalog(_explain(exc)) from exc


def _explain(exc: ValidationError) -> str:
    parts = []
    for e in exc.errors():
        where = ".".join(str(p) for p in e["loc"])
        parts.append(f"{where}: {e['msg']}" if where else str(e["msg"]))
    return "invalid catalog: " + "; ".join(parts)
