"""The e-mail channel: ``mailto:`` endpoints sent through an SMTP server (a minimal one
here, speaking the protocol on a real socket); without a server, a failed attempt."""

from __future__ import annotations

import asyncio
import contextlib
import email
from collections.abc import AsyncIterator

from citytel.alerts import AlertDispatcher, Backoff, Smtp
from tests.alerts.conftest import _open, _outbox, _setup
from tests.helpers import query, wait_until


@contextlib.asynccontextmanager
async def smtp_server() -> AsyncIterator[tuple[int, list[tuple[list[str], bytes]]]]:
    """An SMTP receiver on a free port; what it received: (recipients, message)."""
    got: list[tuple[list[str], bytes]] = []

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        recipients: list[str] = []

        async def say(line: str) -> None:
            writer.write(line.encode() + b"\r\n")
            await writer.drain()

        await say("220 test")
        while line := (await reader.readline()).decode().strip():
            verb = line.split(" ", 1)[0].upper()
            if verb == "RCPT":
                recipients.append(line.split(":", 1)[1].strip(" <>"))
            if verb == "DATA":
                await say("354 go on")
                data = await reader.readuntil(b"\r\n.\r\n")
                got.append((recipients, data[:-5]))
            if verb == "QUIT":
                await say("221 bye")
                break
            await say("250 ok")
        writer.close()

    server = await asyncio.start_server(session, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1], got


async def test_an_alert_by_e_mail(url: str) -> None:
    async with smtp_server() as (port, got):
        await _setup(url, "mailto:night-desk@city.example", detector="test_mail")
        smtp = Smtp("127.0.0.1", port, sender="citytel@city.example")
        async with AlertDispatcher(database_url=url, poll_s=0.05, smtp=smtp):
            await _open(url, "sl-2", "test_mail", 0.99)

            async def delivered() -> bool:
                return bool((await _outbox(url))[0][2])

            await wait_until(delivered)
    ((recipients, raw),) = got
    assert recipients == ["night-desk@city.example"]
    msg = email.message_from_bytes(raw)
    assert msg["Subject"] == "[citytel] high test_mail on sl-2: opened"
    ((key,),) = await query(url, "SELECT idempotency_key FROM alert_outbox")
    assert msg["Message-ID"] == f"<{key}@citytel>"
    assert "device: sl-2" in msg.get_payload()


async def test_no_smtp_server_is_a_failed_attempt_kept(url: str) -> None:
    await _setup(url, "mailto:night-desk@city.example", detector="test_nomail")
    backoff = Backoff(first_s=0.05, attempts=1)
    async with AlertDispatcher(database_url=url, poll_s=0.05, backoff=backoff):
        await _open(url, "sl-2", "test_nomail", 0.99)

        async def failed() -> bool:
            return bool((await _outbox(url))[0][3])

        await wait_until(failed)
    ((_, attempts, done, _, error, _),) = await _outbox(url)
    assert (attempts, done, error) == (1, False, "no SMTP server configured")
