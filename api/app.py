"""The HTTP API application (docs/api.md): routers, problem responses, the pool."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from psycopg_pool import AsyncConnectionPool

from api import problems
from api.deps import Limits
from api.overload import Shedding
from api.routes import anomalies, apikeys, devices, exports, gateways, health, series, service

DESCRIPTION = """Read citytel: devices, series, anomalies, gateways, service metrics and
open-data exports. Every route but `/healthz`, `/readyz` and `/problems/*` needs an API
key: `Authorization: Bearer <key>` (`citytel apikey create --role reader`). Times are
RFC 3339 with an offset, in and out. Errors are RFC 9457 problems
(`application/problem+json`) whose `type` is stable. See docs/api.md."""


RECONNECT_TIMEOUT_S = 2.0
"""Longest chain of reconnection attempts of the pool before it starts afresh."""


def create_app(
    *,
    database_url: str,
    limits: Limits | None = None,
    broker: tuple[str, int] | None = None,
) -> FastAPI:
    """The application, with a connection pool opened and closed by its lifespan.

    ``broker`` (host, port), when given, is checked by ``/readyz`` as well.
    """
    limits = limits or Limits()
    options = f"-c statement_timeout={limits.statement_timeout_ms} -c TimeZone=UTC"

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncConnectionPool(
            database_url,
            min_size=1,
            max_size=8,
            open=False,
            timeout=limits.pool_timeout_s,
            # A connection that died with the server (a restart) is found and replaced
            # when a request takes it, instead of failing that request.
            check=AsyncConnectionPool.check_connection,
            # While the server is down the pool retries with a doubling delay; giving up
            # after a short while bounds that delay, so the pool reconnects within about
            # a second of the next request once the server is back.
            reconnect_timeout=RECONNECT_TIMEOUT_S,
            # No server-side prepared statements: the queries' optional filters need
            # plans made for the values at hand, not generic ones.
            kwargs={"autocommit": True, "options": options, "prepare_threshold": None},
        ) as pool:
            app.state.pool = pool
            yield

    app = FastAPI(title="citytel", version="1.0.0", description=DESCRIPTION, lifespan=lifespan)
    app.state.limits = limits
    app.state.broker = broker
    problems.install(app)
    app.add_middleware(Shedding, max_in_flight=limits.max_in_flight)
    for module in (health, devices, series, anomalies, gateways, exports, service, apikeys):
        app.include_router(module.router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            schema["components"]["schemas"]["Problem"] = problems.Problem.model_json_schema()
            app.openapi_schema = problems.problem_openapi(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
