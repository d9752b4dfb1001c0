"""The ingester's MQTT session: paho-mqtt 2 in its own network thread, acks by hand.

Why not aiomqtt here: it costs about four times paho's CPU per received message
(docs/ingest.md), and it has no public manual-ack API. This session keeps paho's
per-message callback to one list append; the ingester takes the list in batches, commits
them, and only then sends the PUBACKs. The broker keeps at most ``receive_maximum``
unacknowledged messages in flight to us, which bounds what we hold in memory.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any, NamedTuple, Self

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from citytel.errors import BrokerError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Broker:
    """Where the MQTT broker is and how to log in."""

    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    tls: bool = False


class Delivery(NamedTuple):
    """One message as the broker handed it to us; ``mid``/``generation`` identify its ack."""

    topic: str
    payload: bytes
    received_us: int
    mid: int
    qos: int
    generation: int


class Subscription:
    """A persistent MQTT 5 session subscribed at QoS 1; messages are acked by ``ack``.

    Use as an async context manager. ``take`` returns what arrived since the last call;
    ``wait`` sleeps until ``wake_at`` messages are waiting or a timeout passes.
    """

    def __init__(
        self,
        *,
        broker: Broker,
        client_id: str,
        topics: list[str],
        session_expiry_s: int = 7 * 86_400,
        receive_maximum: int = 20_000,
        wake_at: int = 1_000,
        connect_timeout_s: float = 30.0,
    ) -> None:
        self._broker = broker
        self._topics = topics
        self._wake_at = wake_at
        self._connect_timeout_s = connect_timeout_s
        self._session_expiry_s = session_expiry_s
        self._receive_maximum = receive_maximum
        # deque: append (paho's thread) and popleft (ours) are atomic, no lock needed
        self._inbox: collections.deque[Delivery] = collections.deque()
        self._generation = 0
        self._connected = threading.Event()
        self._last_error = "no answer yet"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self.reconnects = 0
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=paho.MQTTv5,
            manual_ack=True,
        )
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        if broker.username is not None:
            self._client.username_pw_set(broker.username, broker.password)
        if broker.tls:
            self._client.tls_set()
        self._client.reconnect_delay_set(1, 30)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def __aenter__(self) -> Self:
        self._loop = asyncio.get_running_loop()
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self._session_expiry_s
        props.ReceiveMaximum = self._receive_maximum
        self._client.connect_async(
            self._broker.host,
            self._broker.port,
            keepalive=30,
            clean_start=False,
            properties=props,
        )
        self._client.loop_start()
        if not await asyncio.to_thread(self._connected.wait, self._connect_timeout_s):
            self._client.loop_stop()
            raise BrokerError(
                f"cannot connect to MQTT broker {self._broker.host}:{self._broker.port}:"
                f" {self._last_error}"
            )
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)

    def take(self) -> list[Delivery]:
        """Everything received since the last call, in arrival order."""
        self._wake.clear()
        inbox = self._inbox
        return [inbox.popleft() for _ in range(len(inbox))]

    def pending(self) -> int:
        return len(self._inbox)

    async def wait(self, max_wait_s: float) -> None:
        """Return when ``wake_at`` messages wait, or after ``max_wait_s`` seconds."""
        if len(self._inbox) >= self._wake_at:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), max_wait_s)

    def ack(self, deliveries: list[Delivery]) -> int:
        """Acknowledge committed deliveries; returns how many acks were sent.

        A delivery from before a reconnect is not acked: its packet id may now name
        another message. The broker re-sends it and the duplicate is recognised.
        """
        generation = self._generation
        client = self._client
        sent = 0
        for d in deliveries:
            if d.qos and d.generation == generation:
                client.ack(d.mid, d.qos)
                sent += 1
        return sent

    # The callbacks below run in paho's network thread.

    def _on_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            self._last_error = str(reason)
            log.warning("MQTT connection refused: %s", reason)
            return
        self._generation += 1
        if self._generation > 1:
            self.reconnects += 1
        options = SubscribeOptions(qos=1)
        client.subscribe([(t, options) for t in self._topics])
        log.info(
            "MQTT connected to %s:%d (session present: %s)",
            self._broker.host,
            self._broker.port,
            flags.session_present,
        )
        self._connected.set()

    def _on_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        self._connected.clear()
        self._last_error = str(reason)
        log.warning("MQTT disconnected: %s", reason)

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        try:
            topic = message.topic
        except UnicodeDecodeError:
            topic = repr(message._topic)  # becomes an invalid_topic dead letter
        inbox = self._inbox
        inbox.append(
            Delivery(
                topic,
                message.payload,
                time.time_ns() // 1000,
                message.mid,
                message.qos,
                self._generation,
            )
        )
        if len(inbox) == self._wake_at and self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)
