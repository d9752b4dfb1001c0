"""``citytel catalog show|apply FILE|diff FILE``: the catalog versions in the database."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psycopg

from citytel.settings import Settings
from devices.catalog import load
from devices.catalog_model import InvalidCatalog
from devices.errors import CitytelError
from storage import catalog
from storage.database import connect, map_errors


def add_parser(sub: Any) -> None:
    """Register ``catalog`` and its actions on the ``citytel`` subparsers."""
    parser = sub.add_parser("catalog", help="kinds and metrics: show, diff, apply a version")
    actions = parser.add_subparsers(required=True, metavar="action")
    p = actions.add_parser("show", help="print the catalog in force as TOML")
    p.set_defaults(run=_show)
    p = actions.add_parser("diff", help="what applying FILE would change (nothing applied)")
    p.add_argument("file", type=Path)
    p.set_defaults(run=_diff)
    p = actions.add_parser("apply", help="store FILE as the new version in force")
    p.add_argument("file", type=Path)
    p.set_defaults(run=_apply)


def _with_conn(
    settings: Settings, work: Callable[[psycopg.AsyncConnection[Any]], Awaitable[int]]
) -> int:
    if not settings.database_url:
        raise CitytelError("set CITYTEL_DATABASE_URL")
    url = settings.database_url

    async def run() -> int:
        conn = await connect(url, autocommit=True)
        try:
            with map_errors():
                return await work(conn)
        finally:
            await conn.close()

    return asyncio.run(run())


def _document(path: Path) -> Any:
    try:
        return load(path)
    except OSError as exc:
        raise CitytelError(f"cannot read {path}: {exc.strerror}") from exc
    except InvalidCatalog as exc:
        raise CitytelError(f"{path}: {exc}") from exc


def _show(settings: Settings, args: argparse.Namespace) -> int:
    async def work(conn: psycopg.AsyncConnection[Any]) -> int:
        stored = await catalog.current(conn)
        if stored is None:
            raise CitytelError("no catalog stored yet: run `citytel db upgrade`")
        print(f"# catalog version {stored.version}, applied {stored.applied_at.isoformat()}"
              f" ({stored.source})")  # fmt: skip
        print(stored.document.to_toml(), end="")
        return 0

    return _with_conn(settings, work)


def _diff(settings: Settings, args: argparse.Namespace) -> int:
    document = _document(args.file)

    async def work(conn: psycopg.AsyncConnection[Any]) -> int:
        try:
            lines = await catalog.check(conn, document)
        except catalog.CatalogRefused as exc:
            for reason in exc.reasons:
                print(f"! {reason}")
            print(f"{args.file} would be refused", file=sys.stderr)
            return 1
        print("\n".join(lines) if lines else "no change")
        return 0

    return _with_conn(settings, work)


def _apply(settings: Settings, args: argparse.Namespace) -> int:
    document = _document(args.file)

    async def work(conn: psycopg.AsyncConnection[Any]) -> int:
        done = await catalog.apply(conn, document, source="cli")
        for line in done.changes:
            print(line)
        state = "applied as" if done.created else "unchanged: already"
        print(f"catalog {state} version {done.version}", file=sys.stderr)
        return 0

    return _with_conn(settings, work)
