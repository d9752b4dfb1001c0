"""Connecting to PostgreSQL, telling which mode it runs in, and translating its errors."""

from __future__ import annotations

import contextlib
import enum
import logging
from collections.abc import Iterator

import psycopg
from psycopg.rows import TupleRow

from devices.errors import StorageError, StorageUnavailable

log = logging.getLogger(__name__)


class Mode(enum.StrEnum):
    """How readings are stored: TimescaleDB hypertables or plain PostgreSQL tables."""

    TIMESCALEDB = "timescaledb"
    POSTGRESQL = "postgresql"


@contextlib.contextmanager
def map_errors() -> Iterator[None]:
    """Translate psycopg errors into the citytel tree (the one place that does it)."""
    try:
        yield
    except psycopg.OperationalError as exc:
        raise StorageUnavailable(str(exc).strip()) from exc
    except psycopg.Error as exc:
        raise StorageError(str(exc).strip()) from exc


async def connect(url: str, *, autocommit: bool = False) -> psycopg.AsyncConnection[TupleRow]:
    """Open one connection; ``StorageUnavailable`` when the server cannot be reached."""
    with map_errors():
        return await psycopg.AsyncConnection.connect(url, autocommit=autocommit)


async def timescaledb_loadable(conn: psycopg.AsyncConnection[TupleRow]) -> bool:
    """Whether ``CREATE EXTENSION timescaledb`` can work here (installed and preloaded)."""
    cur = await conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')"
        " OR (EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')"
        "     AND current_setting('shared_preload_libraries') ~ 'timescaledb')"
    )
    row = await cur.fetchone()
    return bool(row and row[0])


async def current_mode(conn: psycopg.AsyncConnection[TupleRow]) -> Mode:
    """The mode the schema was migrated in: TimescaleDB when ``readings`` is a hypertable."""
    cur = await conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')"
    )
    row = await cur.fetchone()
    if not (row and row[0]):
        return Mode.POSTGRESQL
    cur = await conn.execute(
        "SELECT EXISTS (SELECT 1 FROM timescaledb_information.hypertables"
        " WHERE hypertable_name = 'readings')"
    )
    row = await cur.fetchone()
    return Mode.TIMESCALEDB if row and row[0] else Mode.POSTGRESQL
