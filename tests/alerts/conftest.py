"""The alert tests run on copies of the small city of tests/api/conftest.py: a fixture
for the copy, a webhook receiver, and helpers that set rules and write episodes."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest

from storage import alerts
from storage.database import connect
from storage.episodes import EpisodeChange, write_episodes
from tests.api.conftest import NIGHT, City, city  # noqa: F401  (city: a fixture)
from tests.fix_servers import DatabaseServer
from tests.helpers import query


@dataclass
class Receiver:
    """A webhook receiver on a free port that answers as ``script`` says, in turn:
    a status code, or "hang" (no answer until the client gives up); then 200."""

    script: list[int | str]
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    port: int = 0
    handlers: set[asyncio.Task[Any]] = field(default_factory=set)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        try:
            await self._answer(reader, writer)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()
            self.handlers.discard(task)

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")[1:]
        headers = {k.lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines if ln)}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.requests.append((headers, body))
        answer = self.script.pop(0) if self.script else 200
        if answer == "hang":
            await asyncio.sleep(5)
        else:
            writer.write(f"HTTP/1.1 {answer} X\r\ncontent-length: 0\r\n\r\n".encode())
            await writer.drain()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"


@contextlib.asynccontextmanager
async def receiving(script: list[int | str]) -> AsyncIterator[Receiver]:
    receiver = Receiver(script)
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
    receiver.port = server.sockets[0].getsockname()[1]
    async with server:
        try:
            yield receiver
        finally:
            server.close()
            for task in list(receiver.handlers):  # a hanging answer the client gave up on
                task.cancel()
            await asyncio.gather(*receiver.handlers, return_exceptions=True)


@pytest.fixture
async def url(city: City, pg_server: DatabaseServer) -> AsyncIterator[str]:  # noqa: F811
    name = f"citytel_alerts_{uuid.uuid4().hex[:6]}"
    yield pg_server.create(name, template=urlsplit(city.url).path.lstrip("/"))
    pg_server.drop(name)


async def _setup(url: str, target: str, **rule: Any) -> dict[str, Any]:
    conn = await connect(url, autocommit=True)
    try:
        endpoint = await alerts.create_endpoint(conn, url=target, name="ops")
        fields = dict.fromkeys(("kind", "metric", "detector", "min_severity", "gateway"))
        box = dict.fromkeys(("min_lon", "min_lat", "max_lon", "max_lat"))
        await alerts.create_rule(
            conn, {**fields, **box, "changes": ["opened"], **rule, "endpoint": endpoint["id"]}
        )
        return endpoint
    finally:
        await conn.close()


async def _open(url: str, device: str, detector: str, peak: float, *, commit: bool = True) -> None:
    ((dev,),) = await query(url, "SELECT id FROM devices WHERE device_id = %s", (device,))
    start_us = int(NIGHT.timestamp() * 1e6) + 10**11
    change = EpisodeChange(dev, None, detector, True, start_us, start_us, peak, 1.0)
    conn = await connect(url)
    try:
        if commit:
            await write_episodes(conn, [change])
        else:
            with contextlib.suppress(RuntimeError):
                async with conn.transaction():
                    await write_episodes(conn, [change])
                    raise RuntimeError("the ingester's batch fails after the episode write")
    finally:
        await conn.close()


async def _outbox(url: str) -> list[tuple[Any, ...]]:
    return await query(
        url,
        "SELECT change, attempts, delivered_at IS NOT NULL, failed_at IS NOT NULL, last_error,"
        " payload FROM alert_outbox ORDER BY id",
    )
