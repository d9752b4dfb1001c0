"""Delivering the alert outbox: signed webhooks (or an MQTT alert topic), retried with
exponential backoff.

Each notification is POSTed as JSON with three headers:

- ``X-Citytel-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`` under
  the endpoint's secret (the timestamp is signed too, so a captured request cannot be
  replayed later than the receiver's tolerance);
- ``Idempotency-Key``: the same for every attempt at one notification (endpoint,
  episode, change): a receiver that saw it already drops the repeat;
- ``Content-Type: application/json``.

A 2xx answer delivers it; anything else (an error status, a refused connection, a
timeout) is an attempt that failed: the next comes after ``Backoff``, and after the last
the notification is marked failed, kept and listed (``GET /v1/alerts/outbox``). A
dispatcher that dies mid-delivery leaves its claim to lapse; the notification is tried
again with the same key, so nothing is lost and a receiver never acts twice.

An endpoint whose URL is ``mqtt://[user:password@]host[:port][/prefix/]`` gets each
notification published at QoS 1 on ``city/v1/alerts/{severity}/{kind}`` as JSON, its
idempotency key in the body; delivered once the broker acknowledges it. An endpoint
``mailto:ADDRESS`` is e-mailed through the ``Smtp`` server given to the dispatcher (its
Message-ID made from the idempotency key).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import smtplib
import time
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import aiomqtt
import httpx
import psycopg

from devices.contract import VERSION
from storage import alerts
from storage.database import connect

log = logging.getLogger(__name__)
CHANNEL = "citytel_alerts"


def sign(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    """The ``X-Citytel-Signature`` header of ``body``."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(secret: str, body: bytes, header: str, *, tolerance_s: int = 300) -> bool:
    """Whether ``header`` signs ``body`` under ``secret``, made within ``tolerance_s``."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        t = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - t) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, body, timestamp=t), header)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays between attempts: ``first_s``, times ``factor`` each time, up to ``max_s``;
    ``attempts`` in all."""

    first_s: float = 2.0
    factor: float = 2.0
    max_s: float = 600.0
    attempts: int = 10

    def delay(self, attempts_made: int) -> timedelta | None:
        """The wait after ``attempts_made`` failed attempts; None: give up."""
        if attempts_made >= self.attempts:
            return None
        return timedelta(seconds=min(self.max_s, self.first_s * self.factor ** (attempts_made - 1)))


def _body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


async def post_signed(
    client: httpx.AsyncClient, url: str, secret: str, payload: dict[str, Any], key: str
) -> str | None:
    """POST one signed notification; None when delivered, else why not."""
    body = _body(payload)
    headers = {
        "Content-Type": "application/json",
        "X-Citytel-Signature": sign(secret, body),
        "Idempotency-Key": key,
        "User-Agent": "citytel-alerts/1",
    }
    try:
        r = await client.post(url, content=body, headers=headers)
    except httpx.TimeoutException:
        return "timeout"
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None if r.is_success else f"HTTP {r.status_code}"


def alert_topic(payload: dict[str, Any], *, prefix: str = "") -> str:
    """``city/v1/alerts/{severity}/{kind}`` (kind ``gateway`` for a whole gateway's)."""
    kind = payload.get("kind") or "gateway"
    return f"{prefix}city/{VERSION}/alerts/{payload['severity']}/{kind}"


async def publish_mqtt(
    url: str, payload: dict[str, Any], key: str, *, timeout_s: float
) -> str | None:
    """Publish one notification (QoS 1, JSON with its idempotency key) to the broker of
    ``mqtt://[user:password@]host[:port][/prefix/]``; None when the broker took it."""
    parts = urlsplit(url)
    body = _body({**payload, "idempotency_key": key})
    try:
        async with (
            asyncio.timeout(timeout_s),
            aiomqtt.Client(
                parts.hostname or "127.0.0.1",
                parts.port or 1883,
                username=parts.username,
                password=parts.password,
                protocol=aiomqtt.ProtocolVersion.V5,
            ) as client,
        ):
            await client.publish(alert_topic(payload, prefix=parts.path.lstrip("/")), body, qos=1)
    except TimeoutError:
        return "timeout"
    except (aiomqtt.MqttError, OSError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


@dataclass(frozen=True, slots=True)
class Smtp:
    """The SMTP server that ``mailto:`` endpoints are sent through."""

    host: str
    port: int = 25
    sender: str = "citytel@localhost"
    username: str | None = None
    password: str | None = None
    starttls: bool = False


def _mail(smtp: Smtp, to: str, payload: dict[str, Any], key: str) -> EmailMessage:
    msg = EmailMessage()
    subject = payload.get("device") or f"gateway {payload.get('gateway')}"
    msg["Subject"] = (
        f"[citytel] {payload['severity']} {payload['detector']} on {subject}: {payload['change']}"
    )
    msg["From"], msg["To"] = smtp.sender, to
    msg["Message-ID"] = f"<{key}@citytel>"  # the same for every attempt: mail clients dedupe
    lines = [f"{k}: {v}" for k, v in sorted(payload.items()) if v is not None]
    msg.set_content("\n".join(lines) + "\n")
    return msg


def _send_mail(smtp: Smtp, msg: EmailMessage, timeout_s: float) -> None:
    with smtplib.SMTP(smtp.host, smtp.port, timeout=timeout_s) as client:
        if smtp.starttls:
            client.starttls()
        if smtp.username:
            client.login(smtp.username, smtp.password or "")
        client.send_message(msg)


async def send_mail(
    smtp: Smtp | None, url: str, payload: dict[str, Any], key: str, *, timeout_s: float
) -> str | None:
    """E-mail one notification to ``mailto:ADDRESS``; None when the server accepted it."""
    if smtp is None:
        return "no SMTP server configured"
    msg = _mail(smtp, url.removeprefix("mailto:"), payload, key)
    try:
        await asyncio.to_thread(_send_mail, smtp, msg, timeout_s)
    except (smtplib.SMTPException, OSError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


async def send_test(url: str, *, secret: str, timeout_s: float = 5.0) -> str | None:
    """A signed test notification (``citytel alerts test URL``); None when delivered."""
    payload = {"change": "test", "id": 0, "detector": "test", "severity": "low"}
    async with httpx.AsyncClient(timeout=timeout_s) as client:
        return await post_signed(client, url, secret, payload, f"citytel-test-{time.time_ns()}")


class AlertDispatcher:
    """Delivers the outbox while open: woken by ``NOTIFY citytel_alerts`` at each commit
    that queued notifications, and every ``poll_s`` for retries that fall due."""

    def __init__(
        self,
        *,
        database_url: str,
        backoff: Backoff | None = None,
        timeout_s: float = 5.0,
        poll_s: float = 1.0,
        batch: int = 50,
        lease_s: float = 60.0,
        listen: bool = True,
        smtp: Smtp | None = None,
    ) -> None:
        self._url = database_url
        self._backoff = backoff or Backoff()
        self._timeout_s = timeout_s
        self._poll_s = poll_s
        self._batch = batch
        self._lease = timedelta(seconds=lease_s)
        self._listen = listen  # False: polling only (the benchmark's baseline)
        self._smtp = smtp
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        self._client = httpx.AsyncClient(timeout=self._timeout_s)
        await self._connect()
        self._task = asyncio.create_task(self._loop(), name="alerts-dispatch")
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self._task is not None:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        finally:
            await self._close()
            await self._client.aclose()

    async def _connect(self) -> None:
        self._conn = await connect(self._url, autocommit=True)
        self._listener = await connect(self._url, autocommit=True)
        if self._listen:
            await self._listener.execute(f"LISTEN {CHANNEL}")

    async def _close(self) -> None:
        for conn in (getattr(self, "_conn", None), getattr(self, "_listener", None)):
            if conn is not None:
                await conn.close()

    async def run_once(self) -> int:
        """Deliver what is due now (one claim); how many were tried."""
        due = await alerts.claim_due(self._conn, limit=self._batch, lease=self._lease)
        results = await asyncio.gather(*(self._deliver(n) for n in due))
        for n, error in zip(due, results, strict=True):
            if error is None:
                await alerts.delivered(self._conn, n.id)
            else:
                delay = self._backoff.delay(n.attempts + 1)
                log.warning("alert %s to %s failed (%s); %s", n.id, n.url, error,
                            f"next in {delay}" if delay else "giving up")  # fmt: skip
                await alerts.retry_later(self._conn, n.id, error=error, delay=delay)
        return len(due)

    async def _deliver(self, n: alerts.Notification) -> str | None:
        if n.url.startswith("mailto:"):
            key, timeout = n.idempotency_key, self._timeout_s
            return await send_mail(self._smtp, n.url, n.payload, key, timeout_s=timeout)
        if n.url.startswith("mqtt://"):
            return await publish_mqtt(
                n.url, n.payload, n.idempotency_key, timeout_s=self._timeout_s
            )
        return await post_signed(self._client, n.url, n.secret, n.payload, n.idempotency_key)

    async def _loop(self) -> None:
        while True:
            try:
                if await self.run_once():
                    continue
                async for _ in self._listener.notifies(timeout=self._poll_s, stop_after=1):
                    pass
            except psycopg.OperationalError as exc:  # the database went away: reconnect
                log.warning("alerts: %s; reconnecting", exc)
                await self._close()
                await asyncio.sleep(self._poll_s)
                with contextlib.suppress(psycopg.OperationalError):
                    await self._connect()
