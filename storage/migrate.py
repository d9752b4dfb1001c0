"""Numbered, forward-only SQL migrations, recorded in ``schema_migrations``.

Files in ``storage/migrations`` are named ``NNNN_name.sql``. A file whose first line is
``-- citytel: timescaledb`` runs only where TimescaleDB can be loaded; elsewhere it is
recorded as skipped. Re-running ``upgrade`` applies nothing new and changes nothing.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources
from typing import Literal

import psycopg
from psycopg.rows import TupleRow

from devices.errors import ConfigurationError
from storage.catalog import ensure_shipped
from storage.database import Mode, map_errors, timescaledb_loadable

log = logging.getLogger(__name__)

TIMESCALEDB_MARKER = "-- citytel: timescaledb"
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x63697479  # pg_advisory_xact_lock key: one upgrade at a time


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def timescaledb_only(self) -> bool:
        return self.sql.startswith(TIMESCALEDB_MARKER)


@dataclass(frozen=True, slots=True)
class UpgradeReport:
    """What ``upgrade`` did: the mode, and the versions applied and skipped by this call."""

    mode: Mode
    applied: tuple[int, ...]
    skipped: tuple[int, ...]


def migrations() -> list[Migration]:
    """Every migration shipped with citytel, in order."""
    found = []
    for entry in resources.files("storage.migrations").iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    if len({m.version for m in found}) != len(found):
        raise ConfigurationError("two migrations share a version number")
    return found


async def upgrade(
    conn: psycopg.AsyncConnection[TupleRow],
    *,
    timescaledb: Literal["auto", "on", "off"] = "auto",
) -> UpgradeReport:
    """Apply every pending migration in one transaction, then store the shipped catalog
    (``storage.catalog.ensure_shipped``), which keeps ``metrics`` in step."""
    with map_errors():
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            mode = await _choose_mode(conn, timescaledb)
            done = await _done_versions(conn)
            applied: list[int] = []
            skipped: list[int] = []
            for migration in migrations():
                if migration.version in done:
                    continue
                run = mode is Mode.TIMESCALEDB or not migration.timescaledb_only
                if run:
                    await conn.execute(migration.sql.encode())
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, skipped) VALUES (%s, %s, %s)",
                    (migration.version, migration.name, not run),
                )
                (applied if run else skipped).append(migration.version)
            await ensure_shipped(conn)
    if applied or skipped:
        log.info("database migrated (%s): applied %s, skipped %s", mode, applied, skipped)
    return UpgradeReport(mode, tuple(applied), tuple(skipped))


async def _choose_mode(conn: psycopg.AsyncConnection[TupleRow], wanted: str) -> Mode:
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version integer PRIMARY KEY, name text NOT NULL, skipped boolean NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())"
    )
    first_timescaledb = min(m.version for m in migrations() if m.timescaledb_only)
    cur = await conn.execute(
        "SELECT skipped FROM schema_migrations WHERE version = %s", (first_timescaledb,)
    )
    recorded = await cur.fetchone()
    if recorded is not None:  # the mode is fixed by the first upgrade
        return Mode.POSTGRESQL if recorded[0] else Mode.TIMESCALEDB
    loadable = await timescaledb_loadable(conn)
    if wanted == "on" and not loadable:
        raise ConfigurationError(
            "CITYTEL_TIMESCALEDB=on but the timescaledb extension cannot be loaded"
            " (install it and add it to shared_preload_libraries)"
        )
    return Mode.TIMESCALEDB if loadable and wanted != "off" else Mode.POSTGRESQL


async def _done_versions(conn: psycopg.AsyncConnection[TupleRow]) -> set[int]:
    cur = await conn.execute("SELECT version FROM schema_migrations")
    return {row[0] for row in await cur.fetchall()}
