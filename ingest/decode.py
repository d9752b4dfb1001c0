"""Decoding gateway payloads against the contract, salvaging the valid parts of bad ones.

The fast path is one typed msgspec decode per message. Only when that fails does the
slow path decode the message untyped and check it reading by reading, so that the
valid readings of a message with one bad reading are still stored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import msgspec

from devices.catalog import Kind
from devices.contract import OFFLINE, ONLINE, Announcement, DeviceInfo, Reading, Telemetry
from ingest.limits import Limits
from ingest.reasons import Reason

_KINDS = frozenset(k.value for k in Kind)
T = TypeVar("T", covariant=True)


class _Decoder(Protocol[T]):
    def decode(self, buf: bytes, /) -> T: ...


_DECODE_ERRORS = (msgspec.DecodeError, RecursionError, ValueError, UnicodeDecodeError)


@dataclass(frozen=True, slots=True)
class Rejection:
    """Part of a payload that cannot be stored, and why."""

    reason: str  # a Reason, or a FormatReason of another vendor's format
    detail: str
    payload: bytes


class Decoder:
    """Decodes the payloads of the gateway contract v1 (JSON and MessagePack)."""

    def __init__(self, *, limits: Limits, kinds: frozenset[str] = _KINDS) -> None:
        self._limits = limits
        self._kinds = kinds
        self._typed: dict[bool, _Decoder[Telemetry]] = {
            False: msgspec.json.Decoder(Telemetry),
            True: msgspec.msgpack.Decoder(Telemetry),
        }
        # float_hook: a number too large for a double (1e309) decodes as inf, so it costs
        # only its value (not_finite), not the whole message (msgspec refuses it otherwise)
        self._untyped: dict[bool, _Decoder[Any]] = {
            False: msgspec.json.Decoder(float_hook=float),
            True: msgspec.msgpack.Decoder(),
        }

    def telemetry(
        self, gateway_id: str, payload: bytes, *, binary: bool = False
    ) -> tuple[Telemetry | None, list[Rejection]]:
        """The message with its valid readings (None if nothing is usable), and rejections."""
        limits = self._limits
        if len(payload) > limits.max_payload_bytes:
            detail = f"{len(payload)} bytes, limit {limits.max_payload_bytes}"
            return None, [self._reject(Reason.PAYLOAD_TOO_LARGE, detail, payload)]
        message: Telemetry | None
        rejections: list[Rejection] = []
        try:
            message = self._typed[binary].decode(payload)
        except msgspec.ValidationError:
            message, rejections = self._salvage(payload, binary)
        except _DECODE_ERRORS as exc:
            kind = "MessagePack" if binary else "JSON"
            return None, [self._reject(Reason.MALFORMED, f"not {kind}: {exc}", payload)]
        if message is None:
            return None, rejections
        if message.gateway_id != gateway_id:
            detail = f"payload gateway_id {message.gateway_id!r} on the topic of {gateway_id!r}"
            return None, [self._reject(Reason.GATEWAY_MISMATCH, detail, payload)]
        if len(message.readings) > limits.max_readings_per_message:
            detail = f"{len(message.readings)} readings, limit {limits.max_readings_per_message}"
            return None, [self._reject(Reason.TOO_MANY_READINGS, detail, payload)]
        return message, rejections

    def announcement(
        self, gateway_id: str, payload: bytes
    ) -> tuple[list[DeviceInfo], list[Rejection]]:
        """The valid devices of an announcement, and rejections."""
        if len(payload) > self._limits.max_payload_bytes:
            detail = f"{len(payload)} bytes, limit {self._limits.max_payload_bytes}"
            return [], [self._reject(Reason.PAYLOAD_TOO_LARGE, detail, payload)]
        try:
            raw = self._untyped[False].decode(payload)
        except _DECODE_ERRORS as exc:
            return [], [self._reject(Reason.MALFORMED, f"not JSON: {exc}", payload)]
        try:
            head = msgspec.convert(_without(raw, "devices", []), Announcement)
        except msgspec.ValidationError as exc:
            return [], [self._reject(Reason.INVALID_MESSAGE, str(exc), payload)]
        if head.gateway_id != gateway_id:
            detail = f"payload gateway_id {head.gateway_id!r} on the topic of {gateway_id!r}"
            return [], [self._reject(Reason.GATEWAY_MISMATCH, detail, payload)]
        devices, rejections = [], []
        for item in raw["devices"]:
            try:
                device = msgspec.convert(item, DeviceInfo)
            except (msgspec.ValidationError, RecursionError) as exc:
                rejections.append(self._reject_part(Reason.INVALID_DEVICE, str(exc), item, False))
                continue
            if device.kind not in self._kinds:
                detail = f"kind {device.kind!r} is not one of {sorted(self._kinds)}"
                rejections.append(self._reject_part(Reason.UNKNOWN_KIND, detail, item, False))
                continue
            problem = self._attributes_problem(device.attributes)
            if problem is not None:
                rejections.append(self._reject_part(Reason.INVALID_DEVICE, problem, item, False))
                continue
            devices.append(device)
        return devices, rejections

    def _attributes_problem(self, attributes: dict[str, Any]) -> str | None:
        """Why a device's attributes cannot be stored, or None: bounded depth and size,
        text PostgreSQL's jsonb accepts (no NUL). Walked without recursion."""
        limits = self._limits
        stack: list[tuple[Any, int]] = [(attributes, 1)]
        seen = 0
        while stack:
            node, depth = stack.pop()
            seen += 1
            if depth > limits.max_attribute_depth:
                return f"attributes nest deeper than {limits.max_attribute_depth} levels"
            if seen > limits.max_attribute_bytes:
                return f"attributes have more than {limits.max_attribute_bytes} elements"
            if isinstance(node, dict):
                for k, v in node.items():
                    if "\x00" in k:
                        return "attributes contain a NUL character"
                    stack.append((v, depth + 1))
            elif isinstance(node, list):
                stack.extend((v, depth + 1) for v in node)
            elif isinstance(node, str) and "\x00" in node:
                return "attributes contain a NUL character"
            elif isinstance(node, float) and not math.isfinite(node):
                return "attributes contain a number JSON cannot hold"
        size = len(msgspec.json.encode(attributes))
        if size > limits.max_attribute_bytes:
            return f"attributes are {size} bytes as JSON, limit {limits.max_attribute_bytes}"
        return None

    def status(self, payload: bytes) -> tuple[str | None, list[Rejection]]:
        """``online`` or ``offline``, or a rejection."""
        value = payload.strip()
        if value in (ONLINE, OFFLINE):
            return value.decode(), []
        detail = "status must be 'online' or 'offline'"
        return None, [self._reject(Reason.INVALID_STATUS, detail, payload)]

    def _salvage(self, payload: bytes, binary: bool) -> tuple[Telemetry | None, list[Rejection]]:
        try:
            raw = self._untyped[binary].decode(payload)
        except _DECODE_ERRORS as exc:
            return None, [self._reject(Reason.MALFORMED, str(exc), payload)]
        try:
            head = msgspec.convert(_without(raw, "readings", []), Telemetry)
        except msgspec.ValidationError as exc:
            return None, [self._reject(Reason.INVALID_MESSAGE, str(exc), payload)]
        if len(raw["readings"]) > self._limits.max_readings_per_message:
            return head, []  # the caller rejects the whole message
        readings, rejections = [], []
        for item in raw["readings"]:
            try:
                readings.append(msgspec.convert(item, Reading))
            except msgspec.ValidationError as exc:
                rejections.append(self._reject_part(Reason.INVALID_READING, str(exc), item, binary))
        return msgspec.structs.replace(head, readings=readings), rejections

    def _reject(self, reason: Reason, detail: str, payload: bytes) -> Rejection:
        return Rejection(reason, detail, payload[: self._limits.dead_letter_payload_bytes])

    def _reject_part(self, reason: Reason, detail: str, part: Any, binary: bool) -> Rejection:
        try:
            encoded = (msgspec.msgpack.encode if binary else msgspec.json.encode)(part)
        except (TypeError, ValueError):
            encoded = repr(part).encode()
        return self._reject(reason, detail, encoded)


def _without(raw: Any, key: str, placeholder: list[Any]) -> Any:
    """``raw`` with ``raw[key]`` replaced, to validate a message's head on its own."""
    if not isinstance(raw, dict):
        return raw
    if not isinstance(raw.get(key), list):
        return raw  # convert() will name the missing or mistyped field
    return {**raw, key: placeholder}
