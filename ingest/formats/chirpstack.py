"""ChirpStack v4 MQTT integration events (JSON): ``up``, ``join`` and ``status``.

Topic ``application/{application_id}/device/{dev_eui}/event/{event}``. The gateway is the
application (its id, or the mapping's ``gateway``); the device is the DevEUI in lower-case
hex. The identity is the event's ``deduplicationId`` (one per uplink, whatever the number
of gateways that heard it), hashed with the event type: a ``status`` event shares the id of
the uplink that carried it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final

import msgspec

from devices.contract import DeviceInfo, Reading
from ingest.formats import FormatReason, Parsed
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
from ingest.formats.mapping import MappedParser, Resolver
from ingest.reasons import Reason

EVENTS: Final = ("up", "join", "status")
Time = Annotated[datetime, msgspec.Meta(tz=True)]


def subscriptions(*, prefix: str = "") -> list[str]:
    """The topic filters of the events this parser reads."""
    return [f"{prefix}application/+/device/+/event/{event}" for event in EVENTS]


class _DeviceInfo(msgspec.Struct, rename="camel"):
    application_id: str
    dev_eui: str
    application_name: str = ""
    device_name: str = ""
    device_profile_name: str = ""
    tenant_id: str = ""
    tags: dict[str, str] = {}


class _RxInfo(msgspec.Struct, rename="camel"):
    gateway_id: str = ""
    rssi: float | None = None
    snr: float | None = None


class _Event(msgspec.Struct, rename="camel"):
    deduplication_id: str
    device_info: _DeviceInfo
    time: Time | None = None
    # up
    f_cnt: int | None = None
    object: Any = None
    rx_info: list[_RxInfo] = []
    # join
    dev_addr: str = ""
    # status
    margin: float | None = None
    battery_level: float | None = None
    battery_level_unavailable: bool = False
    external_power_source: bool = False


_DECODER: Final = msgspec.json.Decoder(_Event)


class Parser(MappedParser):
    """Parses ChirpStack v4 events; ``mapping`` maps each application's fields."""

    def parse(self, topic: str, payload: bytes, received_us: int | None = None) -> Parsed:
        """Parse one event message."""
        refused = too_large(payload, self._limits)
        if refused is not None:
            return refused
        parts = _topic(topic, self._prefix)
        if parts is None:
            return Parsed().refuse(Reason.INVALID_TOPIC, "not a ChirpStack v4 event topic")
        application, dev_eui, event = parts
        try:
            message = _DECODER.decode(payload)
        except msgspec.ValidationError as exc:
            return Parsed().refuse(Reason.INVALID_MESSAGE, str(exc)[:500])
        except DECODE_ERRORS as exc:
            return Parsed().refuse(Reason.MALFORMED, f"not JSON: {exc}"[:500])
        info = message.device_info
        if info.application_id != application or info.dev_eui.lower() != dev_eui.lower():
            detail = f"payload of {info.application_id}/{info.dev_eui} on the topic of {parts}"
            return Parsed().refuse(Reason.INVALID_MESSAGE, detail[:500])
        resolver = self._resolvers.get(application)
        parsed = Parsed(gateway_id=resolver.source.gateway or application)
        device = device_id(info.dev_eui, resolver)
        if not check_ids(parsed, parsed.gateway_id or "", device):
            return parsed
        parsed.identity = identity("chirpstack", event, message.deduplication_id)
        ts = timestamp(message.time, received_us)
        if event == "up":
            radios = [Radio(rx.rssi, rx.snr) for rx in message.rx_info]
            return uplink(
                parsed,
                device=device,
                ts=ts,
                decoded=message.object,
                radios=radios,
                resolver=resolver,
                link_known=self._known,
            )
        if event == "join":
            return _join(parsed, device, message, resolver)
        return _status(parsed, device, message, ts, resolver)


def _topic(topic: str, prefix: str) -> tuple[str, str, str] | None:
    if not topic.startswith(prefix):
        return None
    parts = topic[len(prefix) :].split("/")
    if len(parts) != 6 or parts[0] != "application" or parts[2] != "device":
        return None
    if parts[4] != "event" or parts[5] not in EVENTS or not parts[1] or not parts[3]:
        return None
    return parts[1], parts[3], parts[5]


def _join(parsed: Parsed, device: str, message: _Event, resolver: Resolver) -> Parsed:
    kind = resolver.source.kind
    if kind is None:
        detail = "join: no kind to announce the device with (set the source's kind)"
        return parsed.refuse(FormatReason.UNSUPPORTED, detail)
    info = message.device_info
    attributes: dict[str, Any] = {
        "dev_eui": info.dev_eui.lower(),
        "dev_addr": message.dev_addr,
        "application": info.application_name,
        "device_name": info.device_name,
        "device_profile": info.device_profile_name,
        "tags": info.tags,
    }
    if message.time is not None:
        attributes["joined_at"] = message.time.isoformat()
    parsed.devices.append(DeviceInfo(device, kind, attributes=attributes))
    return parsed


def _status(parsed: Parsed, device: str, message: _Event, ts: Any, resolver: Resolver) -> Parsed:
    if ts is None:
        return parsed.refuse(Reason.INVALID_MESSAGE, "status without a time")
    source = resolver.source
    fields: dict[str, Any] = {}
    if message.margin is not None:
        fields[source.margin_metric] = message.margin
    if message.battery_level is not None and not (
        message.battery_level_unavailable or message.external_power_source
    ):
        fields[source.battery_metric] = message.battery_level
    metrics, refusals = resolver.metrics(fields)
    parsed.refusals.extend(refusals)
    if metrics:
        parsed.readings.append(Reading(device, ts, metrics))
    return parsed
