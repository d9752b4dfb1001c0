"""The Things Stack v3 MQTT uplinks (JSON).

Topic ``v3/{application}@{tenant}/devices/{device}/up`` (``v3/{application}/devices/...``
on the open-source stack). The gateway is the application id (or the mapping's
``gateway``), the device its DevEUI in lower-case hex (its TTS device id when the uplink
carries no DevEUI). The identity is the Application Server's ``as:up:`` correlation id,
unique per uplink; without one, the DevEUI, ``f_cnt`` and the uplink's received time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final

import msgspec

from ingest.formats import Parsed
from ingest.formats.ids import identity
from ingest.formats.lorawan import (
    DECODE_ERRORS,
    Radio,
    check_ids,
    device_id,
    timestamp,
    too_large,
    uplink,
)
from ingest.formats.mapping import MappedParser
from ingest.reasons import Reason

Time = Annotated[datetime, msgspec.Meta(tz=True)]
_AS_UP: Final = "as:up:"


def subscriptions(*, prefix: str = "") -> list[str]:
    """The topic filter of every application's uplinks."""
    return [f"{prefix}v3/+/devices/+/up"]


class _ApplicationIds(msgspec.Struct):
    application_id: str


class _DeviceIds(msgspec.Struct):
    device_id: str
    application_ids: _ApplicationIds
    dev_eui: str | None = None


class _RxMetadata(msgspec.Struct):
    rssi: float | None = None
    snr: float | None = None


class _Uplink(msgspec.Struct):
    f_cnt: int = 0  # TTS omits zero values
    decoded_payload: Any = None
    rx_metadata: list[_RxMetadata] = []
    received_at: Time | None = None


class _Message(msgspec.Struct):
    end_device_ids: _DeviceIds
    uplink_message: _Uplink
    correlation_ids: list[str] = []
    received_at: Time | None = None


_DECODER: Final = msgspec.json.Decoder(_Message)


class Parser(MappedParser):
    """Parses The Things Stack v3 uplinks; ``mapping`` maps each application's fields."""

    def parse(self, topic: str, payload: bytes, received_us: int | None = None) -> Parsed:
        """Parse one uplink message."""
        refused = too_large(payload, self._limits)
        if refused is not None:
            return refused
        parts = _topic(topic, self._prefix)
        if parts is None:
            return Parsed().refuse(Reason.INVALID_TOPIC, "not a The Things Stack v3 uplink topic")
        source, device_name = parts
        try:
            message = _DECODER.decode(payload)
        except msgspec.ValidationError as exc:
            return Parsed().refuse(Reason.INVALID_MESSAGE, str(exc)[:500])
        except DECODE_ERRORS as exc:
            return Parsed().refuse(Reason.MALFORMED, f"not JSON: {exc}"[:500])
        ids = message.end_device_ids
        application = ids.application_ids.application_id
        if application != source.partition("@")[0] or ids.device_id != device_name:
            detail = f"payload of {application}/{ids.device_id} on the topic of {parts}"
            return Parsed().refuse(Reason.INVALID_MESSAGE, detail[:500])
        resolver = self._resolvers.get(source, application)
        parsed = Parsed(gateway_id=resolver.source.gateway or application)
        device = device_id(ids.dev_eui or ids.device_id, resolver)
        if not check_ids(parsed, parsed.gateway_id or "", device):
            return parsed
        up = message.uplink_message
        received = up.received_at or message.received_at
        parsed.identity = _identity(message, device, received)
        return uplink(
            parsed,
            device=device,
            ts=timestamp(received, received_us),
            decoded=up.decoded_payload,
            radios=[Radio(rx.rssi, rx.snr) for rx in up.rx_metadata],
            resolver=resolver,
            link_known=self._known,
        )


def _identity(message: _Message, device: str, received: datetime | None) -> int:
    for correlation in message.correlation_ids:
        if correlation.startswith(_AS_UP):
            return identity("tts", correlation)
    stamp = received.isoformat() if received is not None else ""
    return identity("tts", device, message.uplink_message.f_cnt, stamp)


def _topic(topic: str, prefix: str) -> tuple[str, str] | None:
    if not topic.startswith(prefix):
        return None
    parts = topic[len(prefix) :].split("/")
    if len(parts) != 5 or parts[0] != "v3" or parts[2] != "devices" or parts[4] != "up":
        return None
    if not parts[1] or not parts[3]:
        return None
    return parts[1], parts[3]
