"""The gateway contract v1: topics and payloads a field gateway publishes.

docs/contract.md explains it for gateway vendors; docs/asyncapi.yaml is its machine-readable
form. The Structs here are used both to decode (ingester) and to encode (simulators).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Final, Literal

import msgspec

VERSION: Final = "v1"
TOPIC_ROOT: Final = f"city/{VERSION}/gateways"

TELEMETRY: Final = "telemetry"
TELEMETRY_MSGPACK: Final = "telemetry/msgpack"
STATUS: Final = "status"
DEVICES: Final = "devices"
CHANNELS: Final = (TELEMETRY, TELEMETRY_MSGPACK, STATUS, DEVICES)

ONLINE: Final = b"online"
OFFLINE: Final = b"offline"

ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
"""Gateway and device ids: 1-64 characters, no MQTT wildcards or separators."""

Identifier = Annotated[str, msgspec.Meta(pattern=ID_PATTERN)]
_ID = re.compile(ID_PATTERN)
Timestamp = int | Annotated[datetime, msgspec.Meta(tz=True)]
"""Epoch milliseconds, or an RFC 3339 string with an offset."""


class Reading(msgspec.Struct, frozen=True):
    """One device's timestamped sample: several metrics at one instant."""

    device_id: Identifier
    ts: Timestamp
    metrics: dict[str, float]


class Telemetry(msgspec.Struct, frozen=True):
    """A telemetry message: a gateway's batch of readings, numbered by ``seq``."""

    gateway_id: Identifier
    seq: Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
    readings: list[Reading]
    sent_at: Timestamp | None = None


class DeviceInfo(msgspec.Struct, frozen=True):
    """A device as its gateway announces it."""

    device_id: Identifier
    kind: str
    latitude: Annotated[float, msgspec.Meta(ge=-90, le=90)] | None = None
    longitude: Annotated[float, msgspec.Meta(ge=-180, le=180)] | None = None
    attributes: dict[str, Any] = msgspec.field(default_factory=dict)


class Announcement(msgspec.Struct, frozen=True):
    """A device announcement: upserts these devices into the registry."""

    gateway_id: Identifier
    devices: list[DeviceInfo]


Status = Literal["online", "offline"]


def topic(gateway_id: str, channel: str, *, prefix: str = "") -> str:
    """The topic on which ``gateway_id`` publishes ``channel`` (one of ``CHANNELS``)."""
    return f"{prefix}{TOPIC_ROOT}/{gateway_id}/{channel}"


def subscriptions(*, prefix: str = "") -> list[str]:
    """The topic filters that cover every gateway's subtree: its channels, and whatever
    else a gateway publishes there, which becomes an ``invalid_topic`` dead letter
    rather than a message the broker acknowledges and nobody reads."""
    return [f"{prefix}{TOPIC_ROOT}/#"]


def parse_topic(topic_name: str, *, prefix: str = "") -> tuple[str, str] | None:
    """Split a topic into (gateway_id, channel), or None when it is not a v1 gateway topic."""
    root = f"{prefix}{TOPIC_ROOT}/"
    if not topic_name.startswith(root):
        return None
    gateway_id, sep, channel = topic_name[len(root) :].partition("/")
    if not sep or channel not in CHANNELS or not _ID.fullmatch(gateway_id):
        return None
    return gateway_id, channel
