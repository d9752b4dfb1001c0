"""The ingester's MQTT session: gmqtt on the event loop, PUBACKs sent after commit.

Why gmqtt: the receive path is the ingester's hot path. Measured on this 2-core machine
with single-reading messages (docs/ingest.md): paho-mqtt 2 ≈ 12k messages per CPU-second
(it makes three ``recv`` calls per packet), gmqtt ≈ 43k. No client has a public batched
manual-ack API: paho's ``manual_ack`` inherits paho's speed; gmqtt's non-optimistic mode
runs a task per message (≈ 25k per CPU-second). So ``_DeferredAckHandler`` overrides one
gmqtt hook to queue QoS 1 publishes unacknowledged; the ingester acks them once their
rows are committed. gmqtt is pinned below 0.9 for this, and tests cover it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from types import TracebackType
from typing import Any, NamedTuple, Self

import gmqtt
from gmqtt.mqtt.constants import MQTTCommands as _Commands
from gmqtt.mqtt.constants import MQTTv50
from gmqtt.mqtt.handler import MQTTConnectError, MqttPackageHandler
from gmqtt.mqtt.package import CommandWithMidPacket

from devices.errors import BrokerError
from ingest.config import Broker

log = logging.getLogger(__name__)
PUBACK = _Commands.PUBACK
_TAKEN_OVER = b"\x8e"  # MQTT 5 DISCONNECT reason code 0x8E: session taken over


class Delivery(NamedTuple):
    """One message as the broker handed it to us; ``mid``/``generation`` identify its ack."""

    topic: str
    payload: bytes
    received_us: int
    mid: int
    qos: int
    generation: int
    retain: bool = False


_HOOK = "_handle_qos_1_publish_packet"
_HOOK_PARAMETERS = ["self", "mid", "packet", "print_topic", "properties"]


def check_gmqtt_hook(handler_class: type = MqttPackageHandler) -> None:
    """Refuse to run on a gmqtt whose QoS 1 hook is not the one we override.

    If a gmqtt release renamed or reshaped the hook, gmqtt would send each PUBACK on
    receipt and ack-after-commit would be lost with no error: so we check at start-up
    and fail loudly instead.
    """
    hook = getattr(handler_class, _HOOK, None)
    if hook is None or not callable(hook):
        raise BrokerError(f"gmqtt {gmqtt.__version__} has no {_HOOK}: cannot defer PUBACKs")
    parameters = list(inspect.signature(hook).parameters)
    if parameters != _HOOK_PARAMETERS:
        raise BrokerError(
            f"gmqtt {gmqtt.__version__}: {_HOOK}{tuple(parameters)} is not the hook "
            f"citytel overrides {tuple(_HOOK_PARAMETERS)}: cannot defer PUBACKs"
        )


class _DeferredAckHandler(MqttPackageHandler):  # type: ignore[misc]
    """gmqtt's packet handler, but QoS 1 publishes go to the session unacknowledged."""

    subscription: Subscription

    def _handle_qos_1_publish_packet(
        self, mid: int, packet: bytes, print_topic: Any, properties: Any
    ) -> None:
        retain = bool(properties.get("retain")) if isinstance(properties, dict) else False
        self.subscription._receive(print_topic, packet, mid, 1, retain)


class Subscription:
    """A persistent MQTT 5 session subscribed at QoS 1; messages are acked by ``ack``.

    Use as an async context manager. ``take`` returns what arrived since the last call;
    ``wait`` sleeps until ``wake_at`` messages are waiting or a time passes. The broker
    keeps at most ``receive_maximum`` unacknowledged messages in flight to us.
    """

    def __init__(
        self,
        *,
        broker: Broker,
        client_id: str,
        topics: list[str],
        session_expiry_s: int = 7 * 86_400,
        receive_maximum: int = 20_000,
        max_held_bytes: int = 256 << 20,
        wake_at: int = 1_000,
        connect_timeout_s: float = 30.0,
        will: tuple[str, bytes] | None = None,
        on_connect: tuple[tuple[str, bytes], ...] = (),
    ) -> None:
        """``will`` is published (retained) by the broker if we vanish; ``on_connect``
        messages (retained) on every connection, e.g. a Sparkplug host's STATE."""
        self._broker = broker
        self._topics = topics
        self._wake_at = wake_at
        self._connect_timeout_s = connect_timeout_s
        self._inbox: list[Delivery] = []
        self._max_held_bytes = max_held_bytes
        self.held_bytes = 0
        """Payload bytes received and not yet acknowledged (or released)."""
        self._paused = False
        self.pauses = 0
        """Times reading from the broker stopped because ``max_held_bytes`` were held."""
        self._wake = asyncio.Event()
        self._generation = 0
        self.reconnects = 0
        self.takeovers = 0
        """Disconnects because another client connected with our client id."""
        self.sessions_lost = 0
        """Reconnects on which the broker had no session for us: its queue was gone."""
        check_gmqtt_hook()
        self._on_connect_messages = on_connect
        will_message = gmqtt.Message(will[0], will[1], qos=1, retain=True) if will else None
        self._client = gmqtt.Client(
            client_id,
            will_message=will_message,
            clean_session=False,
            optimistic_acknowledgement=True,  # QoS 0 only: QoS 1 goes through the hook
            session_expiry_interval=session_expiry_s,
            receive_maximum=receive_maximum,
        )
        handler = self._client._package_handler
        handler.__class__ = _DeferredAckHandler
        handler.subscription = self
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_qos0_message
        self._client.set_config({"reconnect_delay": 1})
        if broker.username is not None:
            self._client.set_auth_credentials(broker.username, broker.password)

    @property
    def connected(self) -> bool:
        return bool(self._client.is_connected)

    async def __aenter__(self) -> Self:
        deadline = time.monotonic() + self._connect_timeout_s
        while True:
            try:
                await self._client.connect(
                    self._broker.host,
                    self._broker.port,
                    ssl=self._broker.ssl_context(),
                    keepalive=30,
                )
                return self
            except (OSError, MQTTConnectError) as exc:
                if time.monotonic() > deadline:
                    raise BrokerError(
                        f"cannot connect to MQTT broker {self._broker.host}:"
                        f"{self._broker.port}: {exc}"
                    ) from exc
                await asyncio.sleep(0.5)

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        with contextlib.suppress(Exception):  # already gone is fine: unacked is redelivered
            await self._client.disconnect()

    def take(self, limit: int | None = None) -> list[Delivery]:
        """Up to ``limit`` of what has arrived, oldest first."""
        inbox = self._inbox
        if limit is None or limit >= len(inbox):
            self._inbox = []
            taken = inbox
        else:
            taken, self._inbox = inbox[:limit], inbox[limit:]
        if len(self._inbox) < self._wake_at:
            self._wake.clear()
        return taken

    def pending(self) -> int:
        return len(self._inbox)

    async def wait(self, max_wait_s: float) -> None:
        """Return when ``wake_at`` messages wait, or after ``max_wait_s`` seconds."""
        self._keep_alive_while_paused()
        if len(self._inbox) >= self._wake_at:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), max_wait_s)

    def inject(self, topic: str, payload: bytes, received_us: int) -> Delivery:
        """Queue a message that came another way (HTTP) with the broker's: it takes the
        same batch path; it has no PUBACK to send (QoS 0 here)."""
        delivery = Delivery(topic, payload, received_us, 0, 0, self._generation)
        self._inbox.append(delivery)
        self.held_bytes += len(payload)
        if len(self._inbox) >= self._wake_at:
            self._wake.set()
        return delivery

    def _pause(self, pause: bool) -> None:
        """Stop (or resume) reading from the broker's socket: memory is bounded in bytes,
        not only by the broker's count of unacknowledged messages."""
        connection = self._client._connection
        transport = getattr(connection, "_transport", None)
        if transport is None:
            return
        if pause:
            transport.pause_reading()
            self.pauses += 1
            log.warning(
                "holding %d bytes (limit %d): reading from the broker paused until commits"
                " free room",
                self.held_bytes,
                self._max_held_bytes,
            )
        else:
            transport.resume_reading()
        self._paused = pause

    def _keep_alive_while_paused(self) -> None:
        # gmqtt closes a connection it has read nothing from for two keepalives; while we
        # hold the socket paused on purpose, the broker's pings wait in it unread
        connection = self._client._connection
        if self._paused and connection is not None and hasattr(connection, "_last_data_in"):
            connection._last_data_in = time.monotonic()

    def publish(self, topic: str, payload: bytes) -> None:
        """Publish one message at QoS 0 (a request to a gateway, such as a rebirth)."""
        if self.connected:
            self._client.publish(topic, payload, qos=0)

    def release(self, deliveries: list[Delivery]) -> None:
        """Forget deliveries that were handled (acked or not): their bytes free room."""
        self.held_bytes -= sum(len(d.payload) for d in deliveries)
        if self._paused and self.held_bytes <= self._max_held_bytes * 3 // 4:
            self._pause(False)

    def ack(self, deliveries: list[Delivery]) -> int:
        """Acknowledge committed deliveries, in order; returns how many acks were sent.

        A delivery from before a reconnect is not acked: the broker re-sends it on the
        new connection, and the ingester recognises the copy by its message identity.
        """
        self.release(deliveries)
        generation = self._generation
        mids = [d.mid for d in deliveries if d.qos and d.generation == generation]
        connection = self._client._connection
        if not mids or connection is None or connection.is_closing():
            return 0
        # All PUBACKs of the batch in one write: one system call instead of one per message
        # (a send per PUBACK took 40 % of the ingester's CPU with single-reading messages).
        build = CommandWithMidPacket.build_package
        packets = b"".join([build(PUBACK, mid, False, proto_ver=MQTTv50) for mid in mids])
        try:
            connection.send_package(packets)
        except (AttributeError, OSError, RuntimeError) as exc:
            # the connection closed under us (a TLS transport raises AttributeError once
            # torn down): the broker re-sends these on the next connection, and their
            # identities make the copies duplicates
            log.warning("could not send %d PUBACKs, the connection is gone: %r", len(mids), exc)
            return 0
        return len(mids)

    def _receive(
        self, topic: Any, payload: bytes, mid: int, qos: int, retain: bool = False
    ) -> None:
        if not isinstance(topic, str):
            topic = repr(topic)  # invalid UTF-8: becomes an invalid_topic dead letter
        inbox = self._inbox
        now_us = time.time_ns() // 1000
        inbox.append(Delivery(topic, payload, now_us, mid, qos, self._generation, retain))
        self.held_bytes += len(payload)
        if self.held_bytes > self._max_held_bytes and not self._paused:
            self._pause(True)
        if len(inbox) == self._wake_at:
            self._wake.set()

    def _on_qos0_message(
        self, client: Any, topic: Any, payload: bytes, qos: int, properties: Any
    ) -> int:
        retain = bool(properties.get("retain")) if isinstance(properties, dict) else False
        self._receive(topic, payload, 0, 0, retain)
        return 0

    def _on_connect(self, client: Any, flags: Any, result: Any, properties: Any) -> None:
        self._generation += 1
        self._paused = False  # a new socket reads until we pause it
        if self._generation > 1:
            self.reconnects += 1
            if not flags:  # session present = 0: the broker kept nothing for us
                self.sessions_lost += 1
                log.error(
                    "MQTT session lost on reconnect: the broker had no session for client id"
                    " %r, so messages queued for it are gone (another client took the id,"
                    " or the session expired)",
                    client._client_id,
                )
        for t in self._topics:
            client.subscribe(t, qos=1)
        for t, payload in self._on_connect_messages:
            client.publish(t, payload, qos=1, retain=True)
        log.info("MQTT connected to %s:%d", self._broker.host, self._broker.port)

    def _on_disconnect(self, client: Any, packet: Any, exc: Any = None) -> None:
        if isinstance(packet, bytes | bytearray) and packet[:1] == _TAKEN_OVER:
            self.takeovers += 1
            log.error(
                "MQTT session taken over: another client connected with client id %r;"
                " the broker disconnected us (gmqtt reconnects)",
                client._client_id,
            )
            return
        log.warning("MQTT connection lost (%s); gmqtt reconnects", exc or "broker closed it")
