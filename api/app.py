"""The HTTP API application (docs/api.md): routers, problem responses, the pool."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api import problems
from api.config import Limits
from api.overload import Shedding
from api.pool import api_pool
from api.routes import (
    alerts,
    anomalies,
    apikeys,
    catalog,
    console,
    deadletters,
    devices,
    exports,
    gateways,
    health,
    live,
    open_data,
    series,
    service,
    session,
)
from api.routes import map as device_map
from api.routes.open_data import OpenDataPolicy
from devices.errors import ConfigurationError

DESCRIPTION = """Read citytel: devices, series, anomalies, gateways, service metrics and
open-data exports. Every route but `/healthz`, `/readyz`, `/problems/*` and the open data
under `/open/v1` needs an API key: `Authorization: Bearer <key>` (`citytel apikey create
--role reader`). Times are RFC 3339 with an offset, in and out. Errors are RFC 9457 problems
(`application/problem+json`) whose `type` is stable. See docs/api.md."""


def create_app(
    *,
    database_url: str,
    limits: Limits | None = None,
    broker: tuple[str, int] | None = None,
    timezone: str = "UTC",
    open_data_policy: OpenDataPolicy | None = None,
) -> FastAPI:
    """The application, with a connection pool opened and closed by its lifespan.

    ``broker`` (host, port), when given, is checked by ``/readyz`` as well. ``timezone``
    is the default ``tz`` of series and the zone of open data's local days.
    """
    limits = limits or Limits()
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigurationError(f"CITYTEL_TIMEZONE: unknown time zone {timezone!r}") from exc

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with api_pool(database_url, limits) as pool:
            app.state.pool = pool
            yield

    app = FastAPI(title="citytel", version="1.0.0", description=DESCRIPTION, lifespan=lifespan)
    app.state.limits = limits
    app.state.broker = broker
    app.state.timezone = timezone
    app.state.open_data = open_data_policy or OpenDataPolicy(timezone=timezone)
    problems.install(app)
    app.add_middleware(Shedding, max_in_flight=limits.max_in_flight)
    routers = [health, devices, series, anomalies, gateways, exports, service, apikeys, catalog]
    routers.append(deadletters)
    for module in (*routers, open_data):
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
