"""A simulated field gateway: a real MQTT client speaking the gateway contract v1."""

from __future__ import annotations

import contextlib
from datetime import datetime
from types import TracebackType
from typing import Self

import aiomqtt
import msgspec

from devices.contract import (
    DEVICES,
    OFFLINE,
    ONLINE,
    STATUS,
    TELEMETRY,
    TELEMETRY_MSGPACK,
    Announcement,
    DeviceInfo,
    Reading,
    Telemetry,
    topic,
)
from simulators.city import SimGateway

_JSON = msgspec.json.Encoder()
_MSGPACK = msgspec.msgpack.Encoder()


class GatewaySimulator:
    """Connects with an ``offline`` will, says ``online``, announces its devices, publishes."""

    def __init__(
        self,
        gateway: SimGateway,
        *,
        host: str,
        port: int,
        prefix: str = "",
        binary: bool = False,
        first_seq: int = 0,
    ) -> None:
        self.gateway = gateway
        self.seq = first_seq
        self._prefix = prefix
        self._binary = binary
        gid = gateway.gateway_id
        self._client = aiomqtt.Client(
            host,
            port,
            identifier=f"sim-{gid}",
            protocol=aiomqtt.ProtocolVersion.V5,
            will=aiomqtt.Will(topic(gid, STATUS, prefix=prefix), OFFLINE, qos=1, retain=True),
            max_inflight_messages=100,
        )

    async def __aenter__(self) -> Self:
        await self._client.__aenter__()
        gid = self.gateway.gateway_id
        await self._client.publish(topic(gid, STATUS, prefix=self._prefix), ONLINE, 1, True)
        await self.announce()
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        gid = self.gateway.gateway_id
        try:
            status = topic(gid, STATUS, prefix=self._prefix)
            await self._client.publish(status, OFFLINE, 1, True, timeout=5)
        except aiomqtt.MqttError:
            pass  # the broker is gone: it publishes our will instead
        finally:
            with contextlib.suppress(aiomqtt.MqttError):
                await self._client.__aexit__(t, e, tb)

    async def announce(self) -> None:
        devices = [
            DeviceInfo(d.device_id, d.kind.value, d.latitude, d.longitude)
            for d in self.gateway.devices
        ]
        payload = _JSON.encode(Announcement(self.gateway.gateway_id, devices))
        await self._client.publish(
            topic(self.gateway.gateway_id, DEVICES, prefix=self._prefix), payload, 1
        )

    def encode(self, readings: list[Reading], sent_at: datetime) -> tuple[str, bytes]:
        """The next telemetry message (topic, payload); numbers it with the next seq."""
        self.seq += 1
        message = Telemetry(
            self.gateway.gateway_id, self.seq, readings, int(sent_at.timestamp() * 1000)
        )
        channel = TELEMETRY_MSGPACK if self._binary else TELEMETRY
        encoder = _MSGPACK if self._binary else _JSON
        return topic(self.gateway.gateway_id, channel, prefix=self._prefix), encoder.encode(message)

    async def publish(self, topic_name: str, payload: bytes) -> None:
        await self._client.publish(topic_name, payload, 1)
