"""Catalog versions stored in the database, and the rules a new version must keep.

Each applied catalog document is a row of ``catalog_versions`` (1, 2, ...); the newest is
in force and ``metrics`` mirrors it. A new version may add kinds and metrics and change
what does not touch stored data (descriptions, ranges, flags); it is refused, with every
reason, when it would change what stored values mean (docs/devices.md):

- a metric id of the version in force is missing, or changes name, kind, unit or unit code;
- a new metric id takes a name that another id had in any version, or an id comes back
  with another name than it had;
- a kind that registered devices have is removed.

For the ingester: ``catalog_version(conn)`` is one index lookup, cheap to poll;
``load_catalog(conn)`` reads the version in force as a ``devices.catalog.Catalog``;
``newer_catalog(conn, than=v)`` does both, returning a catalog only when it changed. Every
applied version is also announced with ``NOTIFY citytel_catalog, '<version>'``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import psycopg
from pydantic import BaseModel

from devices.catalog import Catalog, shipped_document
from devices.catalog_model import CatalogDocument, from_json
from devices.errors import CitytelError
from storage.database import map_errors

CHANNEL = "citytel_catalog"
"""The NOTIFY channel each applied version is announced on (payload: the version)."""
_LOCK_KEY = 0x63617431  # pg_advisory_xact_lock key: one catalog change at a time

Source = Literal["shipped", "cli", "api"]


class CatalogRefused(CitytelError):
    """A catalog version that would break stored data; ``reasons`` lists every rule broken."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("catalog refused: " + "; ".join(reasons))
        self.reasons = reasons


@dataclass(frozen=True, slots=True)
class StoredVersion:
    """A catalog version as stored."""

    version: int
    document: CatalogDocument
    applied_at: datetime
    source: str

    def catalog(self) -> Catalog:
        return Catalog(self.document, version=self.version)


@dataclass(frozen=True, slots=True)
class Applied:
    """What ``apply`` did: the version in force afterwards and the changes it brought."""

    version: int
    created: bool
    """False: the document was the version in force already; nothing changed."""
    changes: tuple[str, ...]


def digest(document: CatalogDocument) -> str:
    """A digest of the document's content (equal documents, equal digests)."""
    canonical = json.dumps(document.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def refusals(
    old: CatalogDocument,
    new: CatalogDocument,
    *,
    names_ever: dict[str, int] | None = None,
    kinds_in_use: set[str] | frozenset[str] = frozenset(),
) -> list[str]:
    """Every reason ``new`` may not follow ``old``; empty when it may.

    ``names_ever`` maps each metric name any stored version used to its id;
    ``kinds_in_use`` are the kinds registered devices have.
    """
    reasons: list[str] = []
    new_by_id = {m.id: m for m in new.metrics}
    old_ids = {m.id for m in old.metrics}
    for m in old.metrics:
        n = new_by_id.get(m.id)
        if n is None:
            reasons.append(f"metric {m.id} ({m.name}) is missing: metric ids are never removed")
            continue
        for attr in ("name", "kind", "unit", "unit_code"):
            before, after = getattr(m, attr), getattr(n, attr)
            if before != after:
                reasons.append(
                    f"metric {m.id} ({m.name}) changes its {attr} from {before!r} to {after!r}:"
                    " an id never changes meaning; add a metric with a new id instead"
                )
    ever = (names_ever or {}) | {m.name: m.id for m in old.metrics}
    ids_ever = {i: name for name, i in ever.items()}
    for n in new.metrics:
        if n.id in old_ids:
            continue
        if ever.get(n.name, n.id) != n.id:
            reasons.append(
                f"metric {n.id} takes the name {n.name!r} of metric {ever[n.name]}:"
                " metric names are never reused"
            )
        elif ids_ever.get(n.id, n.name) != n.name:
            reasons.append(
                f"metric {n.id} was {ids_ever[n.id]!r} in an earlier version:"
                " metric ids are never reused"
            )
    gone = {k.id for k in old.kinds} - {k.id for k in new.kinds}
    for kind in sorted(gone & set(kinds_in_use)):
        reasons.append(f"kind {kind!r} is removed but registered devices have it")
    return reasons


def changes(old: CatalogDocument, new: CatalogDocument) -> list[str]:
    """What ``new`` changes from ``old``, one line per kind or metric added, removed, changed."""
    kinds = _changed("kind", {k.id: k for k in old.kinds}, {k.id: k for k in new.kinds})
    metrics = _changed("metric", {m.id: m for m in old.metrics}, {m.id: m for m in new.metrics})
    return kinds + metrics


def _changed(
    what: str, before: Mapping[Any, BaseModel], after: Mapping[Any, BaseModel]
) -> list[str]:
    out = [f"+ {what} {_label(after[key])}" for key in sorted(after.keys() - before.keys())]
    out += [f"- {what} {_label(before[key])}" for key in sorted(before.keys() - after.keys())]
    for key in sorted(before.keys() & after.keys()):
        a, b = before[key].model_dump(), after[key].model_dump()
        diff = [f"{f}: {a[f]!r} -> {b[f]!r}" for f in a if a[f] != b[f]]
        if diff:
            out.append(f"~ {what} {_label(after[key])}: " + ", ".join(diff))
    return out


def _label(item: Any) -> str:
    name = getattr(item, "name", None)
    return f"{item.id} ({name})" if name else str(item.id)


async def catalog_version(conn: psycopg.AsyncConnection[Any]) -> int:
    """The version in force (0 before any is stored): one index lookup, cheap to poll."""
    cur = await conn.execute("SELECT coalesce(max(version), 0) FROM catalog_versions")
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def load_catalog(conn: psycopg.AsyncConnection[Any]) -> Catalog:
    """The catalog in force; the shipped one (version 0) when none is stored yet."""
    with map_errors():
        stored = await current(conn)
    return stored.catalog() if stored else Catalog(shipped_document())


async def newer_catalog(conn: psycopg.AsyncConnection[Any], than: int) -> Catalog | None:
    """The catalog in force if its version is above ``than``, else None (a poll: one index
    lookup when nothing changed)."""
    with map_errors():
        if await catalog_version(conn) <= than:
            return None
        stored = await current(conn)
    return stored.catalog() if stored and stored.version > than else None


async def current(
    conn: psycopg.AsyncConnection[Any], *, version: int | None = None
) -> StoredVersion | None:
    """The version in force (or the given one), or None when there is no such version."""
    cur = await conn.execute(
        "SELECT version, document, applied_at, source FROM catalog_versions"
        " WHERE %(v)s::int IS NULL OR version = %(v)s ORDER BY version DESC LIMIT 1",
        {"v": version},
    )
    row = await cur.fetchone()
    if row is None:
        return None
    version, document, applied_at, source = _values(row)
    return StoredVersion(version, from_json(document), applied_at, source)


async def history(conn: psycopg.AsyncConnection[Any]) -> list[tuple[int, datetime, str, str]]:
    """Every stored version, newest first: (version, applied_at, source, digest)."""
    cur = await conn.execute(
        "SELECT version, applied_at, source, digest FROM catalog_versions ORDER BY version DESC"
    )
    return [(int(v), t, str(s), str(d)) for v, t, s, d in map(_values, await cur.fetchall())]


def _values(row: Any) -> tuple[Any, ...]:
    return tuple(row.values()) if isinstance(row, dict) else tuple(row)


async def apply(
    conn: psycopg.AsyncConnection[Any], document: CatalogDocument, *, source: Source
) -> Applied:
    """Store ``document`` as a new version and bring ``metrics`` in step, in one transaction.

    Raises ``CatalogRefused`` when the document would break stored data; applying the
    version in force again creates nothing.
    """
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        return await _apply_locked(conn, document, source)


async def check(conn: psycopg.AsyncConnection[Any], document: CatalogDocument) -> list[str]:
    """The changes ``document`` would bring (``catalog diff``); ``CatalogRefused`` if refused."""
    before = await current(conn)
    if before is None:
        return changes(CatalogDocument.model_construct(kinds=(), metrics=()), document)
    await _check(conn, before.document, document)
    return changes(before.document, document)


async def _apply_locked(
    conn: psycopg.AsyncConnection[Any], document: CatalogDocument, source: Source
) -> Applied:
    before = await current(conn)
    if before is not None and digest(before.document) == digest(document):
        return Applied(before.version, False, ())
    if before is not None:
        await _check(conn, before.document, document)
    version = (before.version if before else 0) + 1
    await conn.execute(
        "INSERT INTO catalog_versions (version, document, digest, source)"
        " VALUES (%s, %s::jsonb, %s, %s)",
        (version, json.dumps(document.model_dump(mode="json")), digest(document), source),
    )
    await _sync_metrics(conn, document)
    await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(version)))
    empty = CatalogDocument.model_construct(kinds=(), metrics=())
    return Applied(version, True, tuple(changes(before.document if before else empty, document)))


async def _check(
    conn: psycopg.AsyncConnection[Any], old: CatalogDocument, new: CatalogDocument
) -> None:
    reasons = refusals(
        old, new, names_ever=await _names_ever(conn), kinds_in_use=await _kinds_in_use(conn)
    )
    if reasons:
        raise CatalogRefused(reasons)


async def _names_ever(conn: psycopg.AsyncConnection[Any]) -> dict[str, int]:
    cur = await conn.execute(
        "SELECT DISTINCT m->>'name', (m->>'id')::int FROM catalog_versions,"
        " jsonb_array_elements(document->'metrics') AS m"
    )
    return {str(r[0]): int(r[1]) for r in map(_values, await cur.fetchall())}


async def _kinds_in_use(conn: psycopg.AsyncConnection[Any]) -> set[str]:
    cur = await conn.execute("SELECT DISTINCT kind FROM devices WHERE kind IS NOT NULL")
    return {str(_values(r)[0]) for r in await cur.fetchall()}


async def _sync_metrics(conn: psycopg.AsyncConnection[Any], document: CatalogDocument) -> None:
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO metrics (id, name, kind, unit, unit_code, low, high, description,"
            " fiware, counter, daily_rhythm, public)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (id) DO UPDATE SET name = excluded.name, kind = excluded.kind,"
            " unit = excluded.unit, unit_code = excluded.unit_code, low = excluded.low,"
            " high = excluded.high, description = excluded.description,"
            " fiware = excluded.fiware, counter = excluded.counter,"
            " daily_rhythm = excluded.daily_rhythm, public = excluded.public",
            [
                (
                    m.id,
                    m.name,
                    m.kind,
                    m.unit,
                    m.unit_code,
                    m.low,
                    m.high,
                    m.description,
                    m.fiware,
                    m.counter,
                    m.daily_rhythm,
                    m.public,
                )
                for m in document.metrics
            ],
        )


async def ensure_shipped(conn: psycopg.AsyncConnection[Any]) -> Applied | None:
    """At ``db upgrade``: store the shipped catalog as version 1, or as the next version when
    the one in force is an earlier shipped one; leave an operator's version alone (None).

    Runs inside the caller's transaction.
    """
    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
    before = await current(conn)
    if before is not None and before.source != "shipped":
        return None
    return await _apply_locked(conn, shipped_document(), "shipped")


async def is_kind(conn: psycopg.AsyncConnection[Any], kind: str) -> bool:
    """Whether the catalog in force defines ``kind`` (one row read, for request checks)."""
    cur = await conn.execute(
        "SELECT document->'kinds' @> jsonb_build_array(jsonb_build_object('id', %s::text))"
        " FROM catalog_versions ORDER BY version DESC LIMIT 1",
        (kind,),
    )
    row = await cur.fetchone()
    return bool(row and _values(row)[0])
