"""Liveness and readiness, open to all (no API key)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from pydantic import BaseModel

from api.deps import Pool

router = APIRouter(tags=["service"])


class Health(BaseModel):
    status: str


@router.get("/healthz")
async def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get("/readyz", responses={503: {"model": Health}})
async def readyz(pool: Pool, response: Response) -> Health:
    """The database answers."""
    try:
        async with pool.connection(timeout=2) as conn:
            await conn.execute("SELECT 1")
    except Exception:  # any failure means not ready; the reason is in the server log
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return Health(status="database unavailable")
    return Health(status="ok")
