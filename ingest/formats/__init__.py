"""Parsers for other vendors' payload formats: pure functions from (topic, bytes) to readings.

One module per format (``chirpstack``, ``tts``, ``sparkplug``, ``senml``), each with a
``Parser`` class and the topic filters it serves. A parser does no I/O: it turns one MQTT
message into a ``Parsed`` -- readings already named by the catalog, device announcements,
a gateway status, refusals for what it could not use, and replies the ingester must
publish. It never raises on bad input; whatever it cannot use becomes a ``Refusal``, which
the ingester stores as a dead letter with its reason. docs/contract.md describes each
format's topics, mapping, identity and refusals.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol

from devices.contract import DeviceInfo, Reading


class FormatReason(enum.StrEnum):
    """Refusal reasons only the format parsers give (the others are ``ingest.Reason``)."""

    UNMAPPED_FIELD = "unmapped_field"
    """A decoded field names no catalog metric and the mapping does not map it."""
    INVALID_VALUE = "invalid_value"
    """A field's value is not a number (nor a boolean)."""
    BAD_UNIT = "bad_unit"
    """A unit that cannot be converted to the catalog metric's unit."""
    UNKNOWN_ALIAS = "unknown_alias"
    """A Sparkplug metric alias not learned from a BIRTH message."""
    INVALID_ID = "invalid_id"
    """A gateway or device id that cannot be made to fit the contract's id pattern."""
    UNSUPPORTED = "unsupported"
    """Valid in its format, but not something citytel stores (a string metric, a DataSet)."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """What a parser could not use, and why: the whole message, or one field of it."""

    reason: str
    """A stable code: an ``ingest.Reason`` or a ``FormatReason`` value."""
    detail: str
    field: str | None = None
    """The field (or device/metric path) refused; None when the whole message is."""


@dataclass(slots=True)
class Parsed:
    """One message, parsed: what to store, announce and publish, and what was refused."""

    gateway_id: str | None = None
    identity: int | None = None
    """A 63-bit non-negative message identity: de-duplicates with ``gateway_id``, as ``seq``
    does in contract v1. None when the message carries nothing to store."""
    sent_at_us: int | None = None
    readings: list[Reading] = field(default_factory=list)
    devices: list[DeviceInfo] = field(default_factory=list)
    status: str | None = None
    """``online`` or ``offline`` for the gateway (or ``status_device``), else None."""
    status_device: str | None = None
    """The device whose status ``status`` is (Sparkplug DBIRTH/DDEATH); None: the gateway."""
    refusals: list[Refusal] = field(default_factory=list)
    replies: list[tuple[str, bytes]] = field(default_factory=list)
    """(topic, payload) the ingester must publish, e.g. a Sparkplug rebirth request."""

    def refuse(self, reason: str, detail: str, field: str | None = None) -> Parsed:
        """Add a refusal; returns self so that ``return parsed.refuse(...)`` reads well."""
        self.refusals.append(Refusal(reason, detail, field))
        return self


class Parser(Protocol):
    """The interface every format module's ``Parser`` class has."""

    def parse(self, topic: str, payload: bytes, received_us: int | None = None) -> Parsed:
        """Parse one message. ``received_us`` (Unix µs) resolves times relative to arrival."""
        ...


__all__ = ["FormatReason", "Parsed", "Parser", "Refusal"]
