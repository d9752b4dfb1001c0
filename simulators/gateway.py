"""A simulated field gateway: a real MQTT client speaking the gateway contract v1.

It connects with a retained ``offline`` will, publishes a retained ``online``, announces
its devices, and publishes its telemetry at QoS 1 from a queue, keeping up to ``in_flight``
messages in flight. A message leaves the queue only when the broker acknowledges it:
when the connection drops, the messages in flight go back to the head of the queue, the
gateway keeps queueing (its backlog) and reconnects with backoff, announcing itself
again; then it replays the backlog in queue order — seq order, unless a fault reordered
them on purpose. ``go_offline`` simulates losing the uplink: an MQTT 5 DISCONNECT with
reason "disconnect with will message", so the broker publishes the will as if the
connection had died, and no reconnection until ``go_online``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiomqtt
import msgspec
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from devices.contract import (
    DEVICES,
    OFFLINE,
    ONLINE,
    STATUS,
    TELEMETRY,
    TELEMETRY_MSGPACK,
    Announcement,
    DeviceInfo,
    Telemetry,
    topic,
)
from simulators.city import SimGateway
from simulators.protocols import ProtocolEncoder

log = logging.getLogger(__name__)

_JSON = msgspec.json.Encoder()
_MSGPACK = msgspec.msgpack.Encoder()
_WILL_REASON = 4  # MQTT 5: "Disconnect with Will Message"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """An encoded telemetry message waiting for the broker's acknowledgement."""

    seq: int
    payload: bytes
    readings: int
    values: int
    parts: tuple[tuple[str, bytes], ...] = ()
    """In another vendor's protocol: the (topic, payload) messages that carry it."""


class GatewayClient:
    """One gateway's MQTT connection, queue and backlog. ``start()`` runs it in a task."""

    def __init__(
        self,
        gateway: SimGateway,
        *,
        host: str,
        port: int,
        prefix: str = "",
        binary: bool = False,
        username: str | None = None,
        password: str | None = None,
        tls: bool = False,
        ca_file: str | None = None,
        in_flight: int = 16,
        on_acked: Callable[[Outgoing], None] | None = None,
        protocol: ProtocolEncoder | None = None,
    ) -> None:
        self.gateway = gateway
        self.gateway_id = gid = gateway.gateway_id
        self._host, self._port = host, port
        self._username, self._password = username, password
        self._tls = aiomqtt.TLSParameters(ca_certs=ca_file) if tls else None
        self._binary = binary
        self._protocol = protocol
        self._in_flight = in_flight
        self._on_acked = on_acked
        self._telemetry = topic(gid, TELEMETRY_MSGPACK if binary else TELEMETRY, prefix=prefix)
        self._status = topic(gid, STATUS, prefix=prefix)
        self._devices = topic(gid, DEVICES, prefix=prefix)
        self.queue: collections.deque[Outgoing] = collections.deque()
        self.inflight = 0
        self.connected = asyncio.Event()
        self.reconnects = 0
        self.acked = 0
        self._wanted = asyncio.Event()
        self._wanted.set()
        self._more = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    # -- what the simulation calls ------------------------------------------------------

    def encode(self, message: Telemetry, values: int | None = None) -> Outgoing:
        """The message as this gateway publishes it; ``values``: how many it carries,
        if known (counted otherwise)."""
        if values is None:
            values = sum(len(r.metrics) for r in message.readings)
        if self._protocol is not None:
            parts = tuple(self._protocol.encode(message))
            return Outgoing(message.seq, b"", len(message.readings), values, parts)
        payload = (_MSGPACK if self._binary else _JSON).encode(message)
        return Outgoing(message.seq, payload, len(message.readings), values)

    def enqueue(self, out: Outgoing) -> None:
        self.queue.append(out)
        self._idle.clear()
        self._more.set()
        if len(self.queue) >= 4 * self._in_flight:
            self._space.clear()

    @property
    def backlog(self) -> int:
        """Messages not yet acknowledged by the broker: queued and in flight."""
        return len(self.queue) + self.inflight

    async def settled(self) -> None:
        """Until every message enqueued so far is acknowledged."""
        await self._idle.wait()

    async def room(self) -> None:
        """Until the queue is short again (backpressure for as-fast-as-possible runs)."""
        await self._space.wait()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"sim-{self.gateway_id}")

    async def until_connected(self) -> None:
        """Until the first connection; raises what stopped the gateway, if anything."""
        assert self._task is not None
        connected = asyncio.ensure_future(self.connected.wait())
        try:
            await asyncio.wait({connected, self._task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            connected.cancel()
        if self._task.done():
            self._task.result()

    async def go_offline(self, *, settle_s: float = 10.0) -> None:
        """Lose the uplink: once what is queued has been acknowledged (up to
        ``settle_s``), drop the connection so that the broker publishes the will, and stay
        offline until ``go_online``."""
        if self.connected.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), settle_s)
        self._wanted.clear()
        self._more.set()  # wake the pump
        client = self._client
        if client is not None:
            reason = ReasonCode(PacketTypes.DISCONNECT, identifier=_WILL_REASON)
            # aiomqtt has no API for a DISCONNECT reason code; paho's client does.
            client._client.disconnect(reasoncode=reason)

    def go_online(self) -> None:
        self._wanted.set()

    async def close(self) -> None:
        """Publish ``offline`` (retained), disconnect cleanly, stop."""
        self._closing = True
        client = self._client
        if client is not None and self.connected.is_set():
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                await client.publish(self._status, OFFLINE, 1, True, timeout=5)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    # -- the connection ------------------------------------------------------------------

    def _announcement(self) -> bytes:
        devices = [
            DeviceInfo(
                d.device_id,
                d.kind.value,
                d.latitude,
                d.longitude,
                {
                    k: v
                    for k, v in (
                        ("rating_w", d.rating_w),
                        ("free_flow_kmh", d.free_flow_kmh),
                        ("lanes", d.lanes),
                    )
                    if v
                },
            )
            for d in self.gateway.devices
        ]
        return _JSON.encode(Announcement(self.gateway_id, devices))

    async def _run(self) -> None:
        backoff = 0.2
        while not self._closing:
            await self._wanted.wait()
            client = aiomqtt.Client(
                self._host,
                self._port,
                username=self._username,
                password=self._password,
                identifier=f"sim-{self.gateway_id}",
                protocol=aiomqtt.ProtocolVersion.V5,
                will=aiomqtt.Will(self._status, OFFLINE, qos=1, retain=True),
                keepalive=30,
                tls_params=self._tls,
                max_inflight_messages=self._in_flight,
                max_queued_outgoing_messages=0,
            )
            client.pending_calls_threshold = 4 * self._in_flight + 16  # quiet: we bound them
            try:
                async with client:
                    self._client = client
                    await client.publish(self._status, ONLINE, 1, True)
                    await client.publish(self._devices, self._announcement(), 1)
                    for birth_topic, birth in self._births():
                        await client.publish(birth_topic, birth, 1)
                    self.connected.set()
                    backoff = 0.2
                    await self._pump(client)
            except aiomqtt.MqttError as exc:
                if self._wanted.is_set() and not self._closing:
                    self.reconnects += 1
                    log.debug("%s: connection lost (%s); retrying", self.gateway_id, exc)
                    await asyncio.sleep(backoff)
                    backoff = min(5.0, backoff * 2)
            finally:
                self._client = None
                self.connected.clear()

    def _births(self) -> list[tuple[str, bytes]]:
        """What another vendor's protocol publishes on connecting (Sparkplug births)."""
        if self._protocol is None:
            return []
        reconnected = getattr(self._protocol, "reconnected", None)
        if reconnected is not None and self.reconnects:
            return list(reconnected())
        return list(self._protocol.birth())

    async def _publish(self, client: aiomqtt.Client, out: Outgoing) -> None:
        if not out.parts:
            await client.publish(self._telemetry, out.payload, 1)
        for part_topic, payload in out.parts:
            await client.publish(part_topic, payload, 1)

    async def _pump(self, client: aiomqtt.Client) -> None:
        """Publish from the queue, ``in_flight`` at a time, in order; on failure put what
        was in flight back at the head of the queue."""
        flying: collections.deque[tuple[Outgoing, asyncio.Task[None]]] = collections.deque()
        try:
            while self._wanted.is_set():
                while self.queue and len(flying) < self._in_flight:
                    out = self.queue.popleft()
                    task = asyncio.ensure_future(self._publish(client, out))
                    flying.append((out, task))
                    self.inflight = len(flying)
                if len(self.queue) < 2 * self._in_flight:
                    self._space.set()
                if not flying:
                    self._more.clear()
                    if not self.queue:
                        await self._wait_more(client)
                    continue
                out, task = flying[0]
                await _confirmed(client, task)
                flying.popleft()
                self.inflight = len(flying)
                if not flying and not self.queue:
                    self._idle.set()
                self.acked += 1
                if self._on_acked is not None:
                    self._on_acked(out)
            # asked to go offline: the disconnect is under way
            await asyncio.sleep(0.05)
            raise aiomqtt.MqttError("went offline")
        finally:
            for _, task in flying:
                task.cancel()
            await asyncio.gather(*(t for _, t in flying), return_exceptions=True)
            self.queue.extendleft(reversed([o for o, _ in flying]))
            self.inflight = 0

    async def _wait_more(self, client: aiomqtt.Client) -> None:
        """Until there is something to send, the gateway is to go offline, or the
        connection drops (aiomqtt reports that only to a waiting publish)."""
        more: asyncio.Future[Any] = asyncio.ensure_future(self._more.wait())
        lost: asyncio.Future[Any] = (
            client._disconnected
        )  # aiomqtt's future: done when the connection ends
        try:
            await asyncio.wait({more, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            more.cancel()
        if lost.done():
            lost.exception()  # retrieved: the reconnect loop handles it
            raise aiomqtt.MqttError("connection lost")


async def _confirmed(client: aiomqtt.Client, publish: asyncio.Task[None]) -> None:
    """Until the broker acknowledges ``publish``; MqttError as soon as the connection
    ends (aiomqtt would otherwise wait for its timeout)."""
    lost = client._disconnected
    await asyncio.wait({publish, lost}, return_when=asyncio.FIRST_COMPLETED)
    if publish.done():
        publish.result()
        return
    lost.exception()
    raise aiomqtt.MqttError("connection lost")
