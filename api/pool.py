"""The API's connection pool: checked connections, quick recovery after a restart.

A PostgreSQL restart kills every connection the pool holds, and an idle pool does not
notice. So each connection is checked (an empty query) when a request takes it; the
first dead one found means the server went away, and the pool then checks all its idle
connections at once, so the requests that follow do not each find a dead one (with
psycopg_pool's growing pause between checks, a request that found several would time
out). While the server is down the pool retries with a doubling delay; giving up after
``RECONNECT_TIMEOUT_S`` starts the chain afresh, so the delay never grows past a second
or two and the pool is back soon after the server.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from api.config import Limits

RECONNECT_TIMEOUT_S = 2.0
"""Longest chain of reconnection attempts of the pool before it starts afresh."""


class CheckedPool(AsyncConnectionPool):
    """An ``AsyncConnectionPool`` that checks a connection on checkout and, on the first
    dead one, all the idle ones."""

    def __init__(self, conninfo: str, **options: Any) -> None:
        super().__init__(
            conninfo, check=self._check, reconnect_timeout=RECONNECT_TIMEOUT_S, **options
        )
        self._sweeps: set[asyncio.Task[None]] = set()

    async def _check(self, conn: psycopg.AsyncConnection[Any]) -> None:
        try:
            await self.check_connection(conn)
        except psycopg.Error:
            if not self._sweeps:
                sweep = asyncio.create_task(self._sweep(), name="citytel-api-pool-sweep")
                self._sweeps.add(sweep)
                sweep.add_done_callback(self._sweeps.discard)
            raise

    async def _sweep(self) -> None:
        with contextlib.suppress(Exception):  # the pool closing, say: nothing to sweep
            await self.check()


def api_pool(database_url: str, limits: Limits) -> CheckedPool:
    """The pool for ``create_app``'s lifespan (opened by ``async with``)."""
    options = f"-c statement_timeout={limits.statement_timeout_ms} -c TimeZone=UTC"
    return CheckedPool(
        database_url,
        min_size=1,
        max_size=8,
        open=False,
        timeout=limits.pool_timeout_s,
        # No server-side prepared statements: the queries' optional filters need
        # plans made for the values at hand, not generic ones.
        kwargs={"autocommit": True, "options": options, "prepare_threshold": None},
    )
