"""``/healthz`` and ``/readyz`` for ``citytel ingest``, which has no HTTP API of its own.

Set ``CITYTEL_HEALTH_PORT`` to serve them (a container orchestrator's probes):
``/healthz`` answers 200 while the ingest loop runs; ``/readyz`` answers 200 when, as
well, the database answers and the broker accepts connections, and 503 otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devices.errors import CitytelError
from ingest.config import Broker
from storage.database import connect


async def _database_answers(url: str) -> bool:
    try:
        conn = await asyncio.wait_for(connect(url, autocommit=True), 2)
    except (CitytelError, TimeoutError):
        return False
    try:
        await conn.execute("SELECT 1")
    except Exception:  # any failure means not ready
        return False
    finally:
        await conn.close()
    return True


async def _broker_answers(broker: Broker) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(broker.host, broker.port), 2)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


def _answer(status: str) -> JSONResponse:
    return JSONResponse({"status": status}, status_code=200 if status == "ok" else 503)


def health_app(
    *,
    running: Callable[[], bool],
    database_url: str,
    broker: Broker,
    metrics: Callable[[], bytes] | None = None,
    extra: list[Route] | None = None,
    session: Callable[[], dict[str, int]] | None = None,
) -> Starlette:
    """The probes' application; ``running`` says whether the ingest loop runs;
    ``metrics``, when given, is served at ``/metrics`` (the ingester's own)."""

    async def healthz(request: Request) -> JSONResponse:
        return _answer("ok" if running() else "ingest loop stopped")

    async def readyz(request: Request) -> JSONResponse:
        if not running():
            return _answer("ingest loop stopped")
        if session is not None:
            facts = session()  # takeovers and lost sessions shown, 503 while disconnected
            status = "ok" if facts.get("connected") else "broker session not connected"
            if status != "ok" or not await _database_answers(database_url):
                status = status if status != "ok" else "database unavailable"
            body = {"status": status, **facts}
            return JSONResponse(body, status_code=200 if status == "ok" else 503)
        if not await _database_answers(database_url):
            return _answer("database unavailable")
        if not await _broker_answers(broker):
            return _answer("broker unavailable")
        return _answer("ok")

    async def exposition(request: Request) -> Response:
        assert metrics is not None
        return Response(metrics(), media_type=CONTENT_TYPE_LATEST)

    routes = [Route("/healthz", healthz), Route("/readyz", readyz)]
    if metrics is not None:
        routes.append(Route("/metrics", exposition))
    return Starlette(routes=[*routes, *(extra or [])])
