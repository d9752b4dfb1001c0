"""Live: Server-Sent Events of new and changed anomalies and of gateway status changes.

PostgreSQL announces every committed change on the channel ``citytel_live`` (triggers of
migration 0009). One listening connection per API process (the hub) fans each
announcement out to the open event streams; a stream holds no pooled connection while
it waits, and borrows one only to read the anomaly it announces.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg_pool import AsyncConnectionPool

from api import session
from api.deps import Pool
from api.routes.anomalies import to_episode
from api.routes.common import PROTECTED
from storage import queries

log = logging.getLogger(__name__)
CHANNEL = "citytel_live"
KEEPALIVE_S = 15.0

router = APIRouter(prefix="/v1", tags=["live"], responses=PROTECTED)
_bearer = HTTPBearer(auto_error=False, scheme_name="apiKey")


class LiveHub:
    """One LISTEN connection, started with the first subscriber, stopped after the last."""

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._queues: set[asyncio.Queue[str]] = set()
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self.on_change: list[Callable[[], None]] = []
        """Called on every announcement (e.g. to drop cached answers)."""

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[str]]:
        """A queue of announcements (JSON text), from the moment the hub listens."""
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=10_000)
        self._queues.add(queue)
        if self._task is None or self._task.done():
            self._listening.clear()
            self._task = asyncio.create_task(self._listen(), name="live-listen")
        try:
            await asyncio.wait_for(self._listening.wait(), timeout=10)
            yield queue
        finally:
            self._queues.discard(queue)
            if not self._queues and self._task is not None:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
                self._task = None

    async def _listen(self) -> None:
        delay = 0.2
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self._listening.set()
                    delay = 0.2
                    async for note in conn.notifies():
                        self._publish(note.payload)
            except psycopg.OperationalError as exc:  # the database went away: retry
                self._listening.clear()
                log.warning("live: listening connection lost (%s); retrying", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _publish(self, payload: str) -> None:
        for hook in self.on_change:
            hook()
        for queue in self._queues:
            with contextlib.suppress(asyncio.QueueFull):  # a stalled client loses, no one else
                queue.put_nowait(payload)


def hub_of(request: Request, pool: AsyncConnectionPool) -> LiveHub:
    """The API process's hub (made on first use)."""
    hub: LiveHub | None = getattr(request.app.state, "live_hub", None)
    if hub is None:
        conninfo = pool.conninfo
        if not isinstance(conninfo, str):  # create_app always gives the pool a URL
            raise TypeError("the live hub needs the pool's connection string")
        hub = request.app.state.live_hub = LiveHub(conninfo)
    return hub


def _event(name: str, data: Any) -> str:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def _render(pool: AsyncConnectionPool, payload: str) -> str | None:
    note = json.loads(payload)
    if note.get("type") == "gateway":
        return _event("gateway", {"gateway_id": note["gateway_id"], "status": note["status"]})
    async with pool.connection() as conn:
        row = await queries.get_anomaly(conn, int(note["id"]))
    if row is None:
        return None
    return _event("anomaly", {"op": note["op"], **to_episode(row).model_dump(mode="json")})


async def _stream(hub: LiveHub, pool: AsyncConnectionPool) -> AsyncIterator[str]:
    async with hub.subscribe() as queue:
        yield _event("ready", {})
        while True:
            try:
                payload = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            if (text := await _render(pool, payload)) is not None:
                yield text


@router.get(
    "/live",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "An event stream"}},
)
async def live(
    request: Request,
    pool: Pool,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> StreamingResponse:
    """Server-Sent Events: `ready` once listening, then `anomaly` (an episode opened,
    ended, acknowledged or resolved: the anomaly as `GET /v1/anomalies/{id}` gives it)
    and `gateway` (a gateway's status changed), each within moments of its commit."""
    # authenticated here with a connection given back at once: the stream may last hours
    async with pool.connection() as conn:
        await session.authenticate(conn, request, credentials.credentials if credentials else None)
    return StreamingResponse(
        _stream(hub_of(request, pool), pool),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
