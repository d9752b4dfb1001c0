"""The HTTP API application: health endpoints now, the query API as it comes (docs/api.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool

from api.routes import health


def create_app(*, database_url: str) -> FastAPI:
    """The application, with a connection pool opened and closed by its lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncConnectionPool(
            database_url, min_size=1, max_size=8, open=False, kwargs={"autocommit": True}
        ) as pool:
            app.state.pool = pool
            yield

    app = FastAPI(title="citytel", version="0.1.0", lifespan=lifespan)
    app.include_router(health.router)
    return app
