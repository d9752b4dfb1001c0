"""The API through a PostgreSQL restart and under overload: real server, real pool."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from psycopg_pool import AsyncConnectionPool

from api.app import create_app
from api.deps import Limits
from citytel.local import LocalPostgres
from tests.api.conftest import api_client, new_key
from tests.fix_servers import _migrate
from tests.helpers import wait_until

BACK_WITHIN_S = 5.0


@pytest.fixture
def own_postgres(server_tmp: Path) -> Iterator[LocalPostgres]:
    """A PostgreSQL of this test's own, to stop and start."""
    with LocalPostgres(server_tmp / "data", fsync=False) as pg:
        asyncio.run(_migrate(pg.url))
        yield pg


async def _poll(
    client: httpx.AsyncClient, log: list[tuple[float, float, int]], stop: asyncio.Event
) -> None:
    """GET a database route over and over; log (start, end, status) of each answer."""
    while not stop.is_set():
        start = time.monotonic()
        status = (await client.get("/v1/gateways")).status_code
        log.append((start, time.monotonic(), status))
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def polling(
    client: httpx.AsyncClient, clients: int
) -> AsyncIterator[list[tuple[float, float, int]]]:
    log: list[tuple[float, float, int]] = []
    stop = asyncio.Event()
    async with asyncio.TaskGroup() as tasks:
        for _ in range(clients):
            tasks.create_task(_poll(client, log, stop))
        try:
            yield log
        finally:
            stop.set()


async def _answered(log: list[tuple[float, float, int]], n: int, status: int = 0) -> bool:
    return sum(not status or s == status for *_, s in log) >= n


async def _warm(client: httpx.AsyncClient) -> None:
    """Enough concurrent requests that the pool holds several connections."""
    async with polling(client, 6) as log:
        await wait_until(lambda: _answered(log, 30, status=200))


async def _restart(pg: LocalPostgres, *, down_s: float) -> tuple[float, float, float]:
    """Stop ``pg``, start it again ``down_s`` later; (when it stopped, when its start
    began, when it was back): it may answer between the last two."""
    await asyncio.to_thread(pg.stop)
    down = time.monotonic()
    await asyncio.sleep(down_s)  # the outage itself, not a wait for a result
    starting = time.monotonic()
    await asyncio.to_thread(pg.start)
    return down, starting, time.monotonic()


async def test_after_a_postgresql_restart_the_first_requests_succeed(
    own_postgres: LocalPostgres,
) -> None:
    key = await new_key(own_postgres.url, "reader")
    async with api_client(own_postgres.url, key) as client:
        await _warm(client)
        await _restart(own_postgres, down_s=1)
        # Nobody asks while it is down; the first requests come a while after it is back,
        # when every connection the pool held has died with the old server.
        await asyncio.sleep(BACK_WITHIN_S)
        async with polling(client, 6) as log:
            await wait_until(lambda: _answered(log, 60))
    assert [status for *_, status in log] == [200] * len(log)


async def test_during_a_postgresql_outage_503_and_within_seconds_of_its_return_200(
    own_postgres: LocalPostgres,
) -> None:
    key = await new_key(own_postgres.url, "reader")
    async with api_client(own_postgres.url, key) as client, polling(client, 4) as log:
        await _warm(client)
        down, starting, back = await _restart(own_postgres, down_s=6)
        await asyncio.sleep(BACK_WITHIN_S + 3)  # answers keep coming in meanwhile
    # (a margin: an answer received just before the stop may be logged just after it)
    during = {status for _, end, status in log if down + 0.5 < end < starting}
    assert during == {503}, "while the database is down: 503 and nothing else"
    late = [(round(end - back, 2), status) for _, end, status in log if end > back + BACK_WITHIN_S]
    assert late and all(status == 200 for _, status in late), late


async def test_beyond_its_requests_in_flight_the_api_sheds_load_and_stays_alive(
    database_url: str,
) -> None:
    key = await new_key(database_url, "reader")
    app = create_app(database_url=database_url, limits=Limits(max_in_flight=4))
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=transport,
            base_url="http://citytel",
            headers={"Authorization": f"Bearer {key}"},
        ) as client,
    ):
        pool: AsyncConnectionPool = app.state.pool
        held = [await pool.getconn() for _ in range(pool.max_size)]  # a database gone slow
        admitted = [asyncio.create_task(client.get("/v1/gateways")) for _ in range(4)]

        async def all_waiting() -> bool:
            return pool.get_stats().get("requests_waiting", 0) == len(admitted)

        await wait_until(all_waiting)
        start = time.monotonic()
        refused = await client.get("/v1/gateways")
        healthz = await client.get("/healthz")
        answered_in = time.monotonic() - start
        for conn in held:
            await pool.putconn(conn)
        statuses = [(await answer).status_code for answer in admitted]
        after = await client.get("/v1/gateways")
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == "/problems/overloaded"
    assert refused.json()["max_in_flight"] == 4
    assert healthz.status_code == 200
    # Both answered while the admitted requests waited (the pool timeout is 5 s).
    assert answered_in < Limits().pool_timeout_s / 2
    assert statuses == [200] * 4 and after.status_code == 200
