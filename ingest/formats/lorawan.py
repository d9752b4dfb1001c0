"""What the LoRaWAN network-server formats (ChirpStack, The Things Stack) share.

Both deliver one uplink per message, with the device's payload already decoded to a JSON
object by the network server's codec, and radio metadata per receiving gateway.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from devices.contract import Reading, Timestamp
from ingest.formats import FormatReason, Parsed, Refusal
from ingest.formats.ids import valid_id
from ingest.formats.mapping import Resolver
from ingest.limits import Limits
from ingest.reasons import Reason

DECODE_ERRORS = (msgspec.DecodeError, RecursionError, ValueError, UnicodeDecodeError)
"""What a msgspec decode raises on bad input (ValidationError is a DecodeError)."""


@dataclass(frozen=True, slots=True)
class Radio:
    """One receiving gateway's view of an uplink."""

    rssi: float | None
    snr: float | None


def best(radios: Sequence[Radio]) -> Radio | None:
    """The gateway that heard the uplink best: highest RSSI (then SNR); None if none did."""
    heard = [r for r in radios if r.rssi is not None and math.isfinite(r.rssi)]
    if not heard:
        return None
    return max(heard, key=lambda r: (r.rssi, r.snr if r.snr is not None else -math.inf))


def device_id(dev_eui: str, resolver: Resolver) -> str:
    """The device id of a DevEUI: lower-case hex, or the mapping's rename."""
    default = dev_eui.lower()
    return resolver.source.devices.get(default, default)


def too_large(payload: bytes, limits: Limits) -> Parsed | None:
    """A refusal of the whole message when it is over the payload limit."""
    if len(payload) <= limits.max_payload_bytes:
        return None
    detail = f"{len(payload)} bytes, limit {limits.max_payload_bytes}"
    return Parsed().refuse(Reason.PAYLOAD_TOO_LARGE, detail)


def check_ids(parsed: Parsed, gateway_id: str, device: str | None) -> bool:
    """Whether the gateway and device ids fit the contract; refuses the message if not."""
    for what, value in (("gateway", gateway_id), ("device", device)):
        if value is None or not valid_id(value):
            parsed.refuse(FormatReason.INVALID_ID, f"{what} id {value!r} does not fit the pattern")
            return False
    return True


def timestamp(time: datetime | None, received_us: int | None) -> Timestamp | None:
    """An uplink's time: the network server's, else the arrival's (None: neither)."""
    if time is not None:
        return time
    if received_us is not None:
        return datetime.fromtimestamp(received_us / 1e6, UTC)
    return None


def uplink(
    parsed: Parsed,
    *,
    device: str,
    ts: Timestamp | None,
    decoded: Any,
    radios: Sequence[Radio],
    resolver: Resolver,
    link_known: frozenset[str],
) -> Parsed:
    """Fill ``parsed`` with the reading of one uplink: decoded fields, then radio metrics."""
    if ts is None:
        return parsed.refuse(Reason.INVALID_MESSAGE, "uplink without a time")
    metrics: dict[str, float] = {}
    refusals: list[Refusal] = []
    if decoded is not None:
        metrics, refusals = resolver.metrics(decoded)
    parsed.refusals.extend(refusals)
    source = resolver.source
    radio = best(radios)
    if source.link_metrics and radio is not None:
        # Only when the catalog has them: radio metadata comes with every uplink, and a
        # dead letter per uplink for a metric the city never asked for would bury the rest.
        for name, value in ((source.rssi_metric, radio.rssi), (source.snr_metric, radio.snr)):
            if value is not None and name in link_known and math.isfinite(value):
                metrics[name] = float(value)
    if decoded is None:
        detail = "uplink without a decoded payload (no codec for this device?)"
        parsed.refuse(FormatReason.UNSUPPORTED, detail, "object")
    if metrics:
        parsed.readings.append(Reading(device, ts, metrics))
    return parsed
