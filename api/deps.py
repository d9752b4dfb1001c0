"""FastAPI dependencies: the pool, a connection per request, the limits, the caller's role."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import psycopg
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg_pool import AsyncConnectionPool

from api import session
from api.config import Limits
from api.problems import FORBIDDEN, ProblemError
from storage.database import pooled


def get_pool(request: Request) -> AsyncConnectionPool:
    pool: AsyncConnectionPool = request.app.state.pool
    return pool


Pool = Annotated[AsyncConnectionPool, Depends(get_pool)]


def get_limits(request: Request) -> Limits:
    limits: Limits = request.app.state.limits
    return limits


ApiLimits = Annotated[Limits, Depends(get_limits)]


async def get_conn(pool: Pool) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """One pooled connection for the whole request (auth and query share it)."""
    async with pooled(pool) as conn:  # psycopg errors leave as citytel's StorageError tree
        yield conn


Conn = Annotated[psycopg.AsyncConnection[Any], Depends(get_conn)]

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="apiKey",
    description="An API key in `Authorization: Bearer <key>` (`citytel apikey create`).",
)


async def get_role(
    request: Request,
    conn: Conn,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The role of the caller's API key (Bearer, or the console's session); 401 without."""
    bearer = credentials.credentials if credentials else None
    return (await session.authenticate(conn, request, bearer)).role


Role = Annotated[str, Depends(get_role)]


async def require_admin(role: Role) -> None:
    """403 unless the caller's key has the admin role."""
    if role != "admin":
        raise ProblemError(FORBIDDEN, f"this route needs an admin key; yours is a {role} key")
