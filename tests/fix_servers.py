"""pytest plugin: a real PostgreSQL and a real Mosquitto for the test session.

Both are started once per session on free ports in temporary directories. Each test that
asks for ``database_url`` gets a fresh, migrated database of its own; each test that asks
for ``topic_prefix`` gets topics no other test uses. ``CITYTEL_TEST_DATABASE_URL`` points
the suite at an existing server instead (it needs the CREATEDB privilege there), for
instance one with TimescaleDB.
"""

from __future__ import annotations

import asyncio
import itertools
import os
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

    def create(self, name: str, *, template: str | None = None) -> str:
        suffix = f" TEMPLATE {template}" if template else ""
        self.execute(f'CREATE DATABASE "{name}"{suffix}')
        return self.url_for(name)

    def drop(self, name: str) -> None:
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def reachable(path: Path) -> Path:
    """``path``, opened to other users: PostgreSQL runs as user postgres under root."""
    for p in (path, *path.parents):
        if str(p) in ("/", "/tmp"):
            break
        p.chmod(p.stat().st_mode | 0o755)
    return path


def _tmp(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    return reachable(tmp_path_factory.mktemp(name))


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseServer]:
    external = os.environ.get("CITYTEL_TEST_DATABASE_URL")
    if external:
        server = DatabaseServer(external)
        server.create(server.template)
        asyncio.run(_migrate(server.url_for(server.template)))
        yield server
        server.drop(server.template)
        return
    with LocalPostgres(_tmp(tmp_path_factory, "pg") / "data", fsync=False) as pg:
        server = DatabaseServer(pg.url_for("postgres"))
        server.create(server.template)
        asyncio.run(_migrate(server.url_for(server.template)))
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
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMosquitto]:
    with LocalMosquitto(_tmp(tmp_path_factory, "mosquitto")) as broker:
        yield broker


@pytest.fixture
def topic_prefix() -> str:
    """A topic prefix of this test's own, so tests never see each other's messages."""
    return f"test{next(_counter)}-{uuid.uuid4().hex[:6]}/"
