"""Liveness, readiness and the problem types: open to all (no API key)."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response, status
from pydantic import BaseModel

from api.deps import Pool
from api.problems import NOT_FOUND, TYPES, ProblemError, response
from devices.errors import StorageError
from storage.database import pooled

log = logging.getLogger(__name__)

router = APIRouter(tags=["service"])


class Health(BaseModel):
    status: str


class ProblemDescription(BaseModel):
    type: str
    status: int
    title: str
    description: str


@router.get("/healthz")
async def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


async def _broker_answers(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 2)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True


@router.get("/readyz", responses={503: {"model": Health}})
async def readyz(pool: Pool, request: Request, response: Response) -> Health:
    """The database answers (and the broker accepts connections, when configured)."""
    try:
        async with pooled(pool, wait_s=2) as conn:
            await conn.execute("SELECT 1")
    except StorageError as exc:
        log.warning("not ready: %s", exc)
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return Health(status="database unavailable")
    broker = request.app.state.broker
    if broker is not None and not await _broker_answers(*broker):
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return Health(status="broker unavailable")
    return Health(status="ok")


@router.get("/problems/{slug}", responses=response(NOT_FOUND))
async def problem_type(slug: Annotated[str, Path(max_length=64)]) -> ProblemDescription:
    """What a problem ``type`` means."""
    kind = TYPES.get(slug)
    if kind is None:
        raise ProblemError(NOT_FOUND, f"no problem type {slug!r}")
    return ProblemDescription(
        type=kind.uri, status=kind.status, title=kind.title, description=kind.description
    )
