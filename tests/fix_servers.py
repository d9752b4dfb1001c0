"""pytest plugin: a real PostgreSQL and a real Mosquitto for the test session.

Both are started once per session on free ports in temporary directories. Each test that
asks for ``database_url`` gets a fresh, migrated database of its own; each test that asks
for ``topic_prefix`` gets topics no other test uses. ``CITYTEL_TEST_DATABASE_URL`` points
the suite at an existing server instead (it needs the CREATEDB privilege there), for
instance one with TimescaleDB.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from citytel.local import LocalMosquitto, LocalPostgres
from storage.database import connect
from storage.migrate import upgrade

_counter = itertools.count()


class DatabaseServer:
    """Creates and drops per-test databases on a server through its maintenance URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.template = f"citytel_tpl_{uuid.uuid4().hex[:8]}"

    def url_for(self, name: str) -> str:
        parts = urlsplit(self.url)
        return urlunsplit(parts._replace(path=f"/{name}"))

    def execute(self, sql: str) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def seal(self, name: str) -> None:
        """Make ``name`` a template nobody is connected to, as ``CREATE DATABASE ... TEMPLATE``
        requires: TimescaleDB keeps a background job scheduler connected to every database
        that has the extension, which would otherwise hold the template open."""
        self.execute(f'ALTER DATABASE "{name}" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false')
        self.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            f" WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        )

    def drop(self, name: str) -> None:
        self.execute(f'ALTER DATABASE "{name}" WITH IS_TEMPLATE false')
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def create(self, name: str, *, template: str | None = None) -> str:
        suffix = f" TEMPLATE {template}" if template else ""
        self.execute(f'CREATE DATABASE "{name}"{suffix}')
        return self.url_for(name)


@contextlib.contextmanager
def server_dir(name: str) -> Iterator[Path]:
    """A fresh directory that PostgreSQL, which runs as user postgres under root, can enter.

    It lies outside pytest's base temp: pytest sets that back to mode 0700 whenever another
    test session starts on the machine, which would lock a running server out of its data.
    """
    path = Path(tempfile.mkdtemp(prefix=f"citytel-test-{name}-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def server_tmp() -> Iterator[Path]:
    """``server_dir`` for one test: where a test starts servers of its own."""
    with server_dir("own") as path:
        yield path


@pytest.fixture(scope="session")
def pg_server() -> Iterator[DatabaseServer]:
    external = os.environ.get("CITYTEL_TEST_DATABASE_URL")
    if external:
        server = DatabaseServer(external)
        server.create(server.template)
        asyncio.run(_migrate(server.url_for(server.template)))
        server.seal(server.template)
        yield server
        server.drop(server.template)
        return
    with server_dir("pg") as tmp, LocalPostgres(tmp / "data", fsync=False) as pg:
        server = DatabaseServer(pg.url_for("postgres"))
        server.create(server.template)
        asyncio.run(_migrate(server.url_for(server.template)))
        server.seal(server.template)
        yield server


async def _migrate(url: str) -> None:
    conn = await connect(url, autocommit=True)
    try:
        await upgrade(conn)
    finally:
        await conn.close()


@pytest.fixture
def database_url(pg_server: DatabaseServer) -> Iterator[str]:
    """A fresh database with every migration applied, dropped after the test."""
    name = f"citytel_t{next(_counter)}_{uuid.uuid4().hex[:6]}"
    url = pg_server.create(name, template=pg_server.template)
    yield url
    pg_server.drop(name)


@pytest.fixture
def empty_database_url(pg_server: DatabaseServer) -> Iterator[str]:
    """A fresh database without any migration."""
    name = f"citytel_e{next(_counter)}_{uuid.uuid4().hex[:6]}"
    url = pg_server.create(name)
    yield url
    pg_server.drop(name)


@pytest.fixture(scope="session")
def mosquitto() -> Iterator[LocalMosquitto]:
    with server_dir("mosquitto") as tmp, LocalMosquitto(tmp) as broker:
        yield broker


@pytest.fixture
def topic_prefix() -> str:
    """A topic prefix of this test's own, so tests never see each other's messages."""
    return f"test{next(_counter)}-{uuid.uuid4().hex[:6]}/"
