"""Connecting to PostgreSQL, telling which mode it runs in, and translating its errors."""

from __future__ import annotations

import contextlib
import enum
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from devices.errors import StorageError, StorageRejected, StorageTimeout, StorageUnavailable

log = logging.getLogger(__name__)


class Mode(enum.StrEnum):
    """How readings are stored: TimescaleDB hypertables or plain PostgreSQL tables."""

    TIMESCALEDB = "timescaledb"
    POSTGRESQL = "postgresql"


_RETRYABLE = ("08", "53", "57", "58", "40")
"""SQLSTATE classes that say "not now": connection exception, insufficient resources,
operator intervention (shutdown, crash recovery), system error, transaction rollback
(serialization failure, deadlock)."""
_REJECTED = ("22", "23", "54")
"""SQLSTATE classes that say "not this data": data exception, integrity constraint
violation, program limit exceeded (an index row or a string too large)."""
_CANCELED = "57014"


def classify(exc: psycopg.Error | PoolTimeout) -> StorageError:
    """The citytel error for a psycopg error, by its SQLSTATE class."""
    detail = str(exc).strip()
    if isinstance(exc, PoolTimeout):
        return StorageUnavailable(detail)
    state = exc.sqlstate
    if state == _CANCELED:
        return StorageTimeout(detail)
    if state is None:  # raised by the client: the connection is gone or unusable
        if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
            return StorageUnavailable(detail)
        return StorageRejected(detail)  # psycopg refused to send it (a NUL in text, say)
    if state[:2] in _RETRYABLE:
        return StorageUnavailable(detail)
    if state[:2] in _REJECTED:
        return StorageRejected(detail, sqlstate=state)
    return StorageError(detail)


@contextlib.contextmanager
def map_errors() -> Iterator[None]:
    """Translate psycopg errors into the citytel tree (the one place that does it)."""
    try:
        yield
    except (psycopg.Error, PoolTimeout) as exc:
        raise classify(exc) from exc


@contextlib.asynccontextmanager
async def pooled(
    pool: AsyncConnectionPool, *, wait_s: float | None = None
) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A connection from ``pool`` (waiting up to ``wait_s``, the pool's own when None),
    with every psycopg error raised while it is held translated into the citytel tree."""
    with map_errors():
        async with pool.connection(timeout=wait_s) as conn:
            yield conn


@contextlib.asynccontextmanager
async def transaction(conn: psycopg.AsyncConnection[TupleRow]) -> AsyncIterator[None]:
    """One transaction on ``conn``, committed on exit; psycopg errors (the commit's too)
    leave as citytel's."""
    with map_errors():
        async with conn.transaction():
            yield


async def connect(url: str, *, autocommit: bool = False) -> psycopg.AsyncConnection[TupleRow]:
    """Open one connection; ``StorageUnavailable`` when the server cannot be reached."""
    with map_errors():
        return await psycopg.AsyncConnection.connect(url, autocommit=autocommit)


async def timescaledb_loadable(conn: psycopg.AsyncConnection[TupleRow]) -> bool:
    """Whether ``CREATE EXTENSION timescaledb`` can work here (installed and preloaded)."""
    return await _exists(
        conn,
        "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')"
        " OR (EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')"
        "     AND current_setting('shared_preload_libraries') ~ 'timescaledb')",
    )


async def current_mode(conn: psycopg.AsyncConnection[TupleRow]) -> Mode:
    """The mode the schema was migrated in: TimescaleDB when ``readings`` is a hypertable."""
    if not await _exists(
        conn, "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')"
    ):
        return Mode.POSTGRESQL
    hypertable = await _exists(
        conn,
        "SELECT EXISTS (SELECT 1 FROM timescaledb_information.hypertables"
        " WHERE hypertable_name = 'metric_values')",
    )
    return Mode.TIMESCALEDB if hypertable else Mode.POSTGRESQL


async def _exists(conn: psycopg.AsyncConnection[TupleRow], query: str) -> bool:
    with map_errors():
        cur = await conn.execute(query)
        row = await cur.fetchone()
    return bool(row and row[0])
