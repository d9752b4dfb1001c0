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
from api.routes import (
    alerts,
    anomalies,
    apikeys,
    console,
    devices,
    exports,
    gateways,
    health,
    live,
    series,
    service,
    session,
)
from api.routes import map as device_map

DESCRIPTION = """Read citytel: devices, series, anomalies, gateways, service metrics and
open-data exports. Every route but `/healthz`, `/readyz` and `/problems/*` needs an API
key: `Authorization: Bearer <key>` (`citytel apikey create --role reader`). Times are
RFC 3339 with an offset, in and out. Errors are RFC 9457 problems
(`application/problem+json`) whose `type` is stable. See docs/api.md."""


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
    for module in (health, devices, series, anomalies, gateways, exports, service, apikeys):
        app.include_router(module.router)
    for module in (session, device_map, live, alerts):  # the console's routes, under /v1 like any
        app.include_router(module.router)
    console.mount(app)

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
