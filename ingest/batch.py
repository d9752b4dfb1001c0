"""Turning a batch of deliveries into columns: NumPy arrays of values, messages, dead letters.

Per message and per reading there is a little Python (appending to lists); per value
there is none: metric lookup, range, kind and time checks run vectorised over the batch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from hashlib import blake2b
from itertools import repeat
from typing import NamedTuple

import msgspec
import numpy as np
import numpy.typing as npt

from devices.columns import NO_MESSAGE, NO_TIME, DeadLetterRow, MessageColumns, ValueColumns
from devices.contract import (
    DEVICES,
    STATUS,
    TELEMETRY,
    TELEMETRY_MSGPACK,
    DeviceInfo,
    Telemetry,
    Timestamp,
    parse_topic,
)
from devices.tables import TABLES, Tables, kind_name
from ingest.decode import Decoder, Rejection
from ingest.formats import Parsed
from ingest.formats.router import Router
from ingest.limits import Limits
from ingest.reasons import Reason

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


_Check = tuple[npt.NDArray[np.bool_], "Reason", str]
"""A mask over readings, the reason for those it marks, and a detail."""

_MS_BOUND = 1 << 52  # ~142,000 years: clamp before scaling so int64 cannot overflow


def unix_us(ts: Timestamp) -> int:
    """A contract timestamp (epoch ms or aware datetime) as Unix microseconds."""
    if isinstance(ts, int):
        return max(-_MS_BOUND, min(ts, _MS_BOUND)) * 1000
    return (ts - _EPOCH) // _US


class Announced(NamedTuple):
    """A device as a gateway announced it, and where the announcement came from."""

    gateway_id: str
    device: DeviceInfo
    topic: str
    received_us: int


@dataclass(slots=True)
class Columns:
    """A batch ready to write, plus what the registry and gateways must learn from it."""

    messages: MessageColumns
    values: ValueColumns
    dead_letters: list[DeadLetterRow]
    out_of_range: ValueColumns | None = None
    """The values dead-lettered as outside their metric's range, for range-check episodes."""


@dataclass(slots=True)
class BatchBuilder:
    """Collects the deliveries of one batch; ``finish`` hands over the finished ``Batch``."""

    decoder: Decoder
    limits: Limits
    prefix: str = ""
    tables: Tables = TABLES
    """The catalog version the batch is checked against."""
    formats: Router | None = None
    """Parsers of other vendors' formats, by topic (None: contract v1 only)."""
    retained_seen: set[int] | None = None
    """Digests of retained invalid statuses already dead-lettered (the ingester's, across
    batches): the broker hands them again on every subscribe; each is refused once."""
    _b: _Parts = field(default_factory=lambda: _Parts())
    _seen: dict[tuple[str, int], int] = field(default_factory=dict)
    """Digest by message identity, of the messages taken so far."""

    def add(self, topic: str, payload: bytes, received_us: int, retain: bool = False) -> None:
        """Take one delivery; input that cannot be stored becomes a dead letter."""
        b = self._b
        b.deliveries += 1
        b.delivered_at.append(received_us)
        parser = self.formats.parser_for(topic) if self.formats is not None else None
        if parser is not None:
            self._foreign(topic, parser.parse(topic, payload, received_us), payload, received_us)
            return
        parsed = parse_topic(topic, prefix=self.prefix)
        if parsed is None:
            detail = "not a gateway contract v1 topic (unknown channel or invalid gateway id)"
            self._dead(topic, received_us, Rejection(Reason.INVALID_TOPIC, detail, payload[:1024]))
            return
        gateway_id, channel = parsed
        if channel in (TELEMETRY, TELEMETRY_MSGPACK):
            if retain:
                detail = "retained telemetry is refused: it would be replayed on every subscribe"
                rejection = Rejection(Reason.RETAINED, detail, payload[:1024])
                self._dead(topic, received_us, rejection, gateway_id)
                return
            self._telemetry(topic, gateway_id, payload, received_us, channel != TELEMETRY)
        elif channel == STATUS:
            status, rejections = self.decoder.status(payload)
            if status is None and retain and self._seen_retained(topic, payload):
                b.duplicates += 1  # handed again on a resubscribe: dead-lettered before
                return
            if status is not None:
                b.statuses[gateway_id] = (status, received_us)
            self._dead_all(topic, received_us, rejections, gateway_id)
        elif channel == DEVICES:
            devices, rejections = self.decoder.announcement(gateway_id, payload)
            b.announced.extend(Announced(gateway_id, d, topic, received_us) for d in devices)
            self._dead_all(topic, received_us, rejections, gateway_id)

    def _seen_retained(self, topic: str, payload: bytes) -> bool:
        seen = self.retained_seen
        if seen is None:
            return False
        key = digest(topic.encode() + b"\x00" + payload)
        if key in seen:
            return True
        seen.add(key)
        return False

    def _foreign(self, topic: str, parsed: Parsed, payload: bytes, received_us: int) -> None:
        """Take a message of another vendor's format, as its parser turned it into ours."""
        b = self._b
        gateway_id = parsed.gateway_id
        kept = payload[: self.limits.dead_letter_payload_bytes]
        rejections = [  # the payload kept once, with the first refusal
            Rejection(r.reason, _detail(r.field, r.detail), kept if i == 0 else b"")
            for i, r in enumerate(parsed.refusals)
        ]  # fmt: skip
        b.replies.extend(parsed.replies)
        if gateway_id is None:
            self._dead_all(topic, received_us, rejections)
            return
        b.announced.extend(Announced(gateway_id, d, topic, received_us) for d in parsed.devices)
        if parsed.status is not None and parsed.status_device is None:
            b.statuses[gateway_id] = (parsed.status, received_us)
        if parsed.identity is None or not parsed.readings:
            self._dead_all(topic, received_us, rejections, gateway_id)
            return
        sent = None if parsed.sent_at_us is None else parsed.sent_at_us // 1000
        message = Telemetry(gateway_id, parsed.identity, parsed.readings, sent)
        self._message(topic, gateway_id, message, payload, received_us, rejections)

    def finish(self) -> Batch:
        """The batch collected so far, immutable; the builder starts afresh."""
        b, self._b, self._seen = self._b, _Parts(), {}
        return Batch(
            limits=self.limits,
            tables=self.tables,
            deliveries=b.deliveries,
            duplicates=b.duplicates,
            msg_gateway=b.msg_gateway,
            msg_seq=b.msg_seq,
            msg_sent=b.msg_sent,
            msg_received=b.msg_received,
            msg_topic=b.msg_topic,
            msg_digest=b.msg_digest,
            msg_payload=b.msg_payload,
            r_device=b.r_device,
            r_ts=b.r_ts,
            r_count=b.r_count,
            r_msg=b.r_msg,
            v_name=b.v_name,
            v_value=b.v_value,
            device_gateway=b.device_gateway,
            announced=b.announced,
            statuses=b.statuses,
            dead_letters=b.dead_letters,
            replies=b.replies,
            delivered_at=b.delivered_at,
        )

    def _telemetry(
        self, topic: str, gateway_id: str, payload: bytes, received_us: int, binary: bool
    ) -> None:
        message, rejections = self.decoder.telemetry(gateway_id, payload, binary=binary)
        if message is None:
            self._dead_all(topic, received_us, rejections, gateway_id)
            return
        self._message(topic, gateway_id, message, payload, received_us, rejections)

    def _message(
        self,
        topic: str,
        gateway_id: str,
        message: Telemetry,
        payload: bytes,
        received_us: int,
        rejections: list[Rejection],
    ) -> None:
        """Take one decoded telemetry message (of contract v1 or of another format)."""
        b = self._b
        identity, content = (gateway_id, message.seq), digest(payload)
        first = self._seen.get(identity)
        if first is not None:  # delivered twice within this batch: store it once
            if first == content:
                b.duplicates += 1
                return
            detail = (
                f"(gateway {gateway_id!r}, seq {message.seq}) came earlier in this batch with"
                f" content digest {first:016x}; this message's is {content:016x}"
            )
            kept = payload[: self.limits.dead_letter_payload_bytes]
            rejection = Rejection(Reason.CONFLICTING_DUPLICATE, detail, kept)
            self._dead(topic, received_us, rejection, gateway_id)
            return
        self._seen[identity] = content
        index = len(b.msg_gateway)
        b.msg_gateway.append(gateway_id)
        b.msg_seq.append(message.seq)
        b.msg_sent.append(message.sent_at)
        b.msg_received.append(received_us)
        b.msg_topic.append(topic)
        b.msg_digest.append(content)
        b.msg_payload.append(payload)
        for d in rejections:
            b.dead_letters.append(
                DeadLetterRow(
                    received_us,
                    topic,
                    d.reason,
                    d.detail,
                    d.payload,
                    gateway_id,
                    message.seq,
                    index,
                )
            )
        readings = message.readings
        b.r_msg.extend(repeat(index, len(readings)))
        device_gateway = b.device_gateway
        for r in readings:
            metrics = r.metrics
            b.r_device.append(r.device_id)
            b.r_ts.append(r.ts)
            b.r_count.append(len(metrics))
            b.v_name.extend(metrics)
            b.v_value.extend(metrics.values())
            if r.device_id not in device_gateway:
                device_gateway[r.device_id] = gateway_id

    def _dead_all(
        self,
        topic: str,
        received_us: int,
        rejections: list[Rejection],
        gateway_id: str | None = None,
    ) -> None:
        for r in _capped(rejections, self.limits.max_dead_letters_per_message):
            self._dead(topic, received_us, r, gateway_id)

    def _dead(
        self, topic: str, received_us: int, r: Rejection, gateway_id: str | None = None
    ) -> None:
        self._b.dead_letters.append(
            DeadLetterRow(received_us, topic, r.reason, r.detail, r.payload, gateway_id)
        )


@dataclass(slots=True)
class _Parts:
    """What a builder has collected: per message, per reading, per value, the rest."""

    deliveries: int = 0
    duplicates: int = 0
    msg_gateway: list[str] = field(default_factory=list)
    msg_seq: list[int] = field(default_factory=list)
    msg_sent: list[Timestamp | None] = field(default_factory=list)
    msg_received: list[int] = field(default_factory=list)
    msg_topic: list[str] = field(default_factory=list)
    msg_digest: list[int] = field(default_factory=list)
    msg_payload: list[bytes] = field(default_factory=list)
    r_device: list[str] = field(default_factory=list)
    r_ts: list[Timestamp] = field(default_factory=list)
    r_count: list[int] = field(default_factory=list)
    r_msg: list[int] = field(default_factory=list)
    v_name: list[str] = field(default_factory=list)
    v_value: list[float] = field(default_factory=list)
    device_gateway: dict[str, str] = field(default_factory=dict)
    announced: list[Announced] = field(default_factory=list)
    statuses: dict[str, tuple[str, int]] = field(default_factory=dict)
    dead_letters: list[DeadLetterRow] = field(default_factory=list)
    replies: list[tuple[str, bytes]] = field(default_factory=list)
    delivered_at: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Batch:
    """A finished batch: what it holds never changes, so ``columns`` may run again when
    a write is retried and gives the same result."""

    limits: Limits
    tables: Tables
    deliveries: int
    duplicates: int
    """Telemetry messages delivered twice within this batch (kept once)."""
    msg_gateway: Sequence[str]
    msg_seq: Sequence[int]
    msg_sent: Sequence[Timestamp | None]
    msg_received: Sequence[int]
    msg_topic: Sequence[str]
    msg_digest: Sequence[int]
    msg_payload: Sequence[bytes]
    r_device: Sequence[str]
    """The device of each reading, in order: ``columns`` wants their keys in this order."""
    r_ts: Sequence[Timestamp]
    r_count: Sequence[int]
    r_msg: Sequence[int]
    v_name: Sequence[str]
    v_value: Sequence[float]
    device_gateway: Mapping[str, str]
    """Each device's gateway, as the first message of the batch that names it says."""
    announced: Sequence[Announced]
    statuses: Mapping[str, tuple[str, int]]
    dead_letters: Sequence[DeadLetterRow]
    replies: Sequence[tuple[str, bytes]] = ()
    """Messages to publish once the batch is committed (a Sparkplug rebirth request)."""
    delivered_at: Sequence[int] = ()
    """When each delivery of the batch arrived (Unix µs), in order."""

    @property
    def gateway_ids(self) -> set[str]:
        """Every gateway the batch speaks of."""
        ids = set(self.msg_gateway) | set(self.statuses)
        ids.update(a.gateway_id for a in self.announced)
        return ids

    def refused_announcements(self, device_ids: set[str]) -> list[DeadLetterRow]:
        """Dead letters for announced devices that belong to another gateway."""
        detail = "the device belongs to another gateway: an announcement cannot move it"
        return [
            DeadLetterRow(
                a.received_us,
                a.topic,
                Reason.DEVICE_NOT_OF_GATEWAY,
                detail,
                msgspec.json.encode(a.device),
                a.gateway_id,
            )
            for a in self.announced
            if a.device.device_id in device_ids
        ]

    def conflicts(self, messages: Iterable[int], stored: Iterable[int]) -> list[DeadLetterRow]:
        """Dead letters for messages whose identity is stored with other content."""
        rows = []
        for m, other in zip(messages, stored, strict=True):
            detail = (
                f"(gateway {self.msg_gateway[m]!r}, seq {self.msg_seq[m]}) is stored with"
                f" content digest {other:016x}; this message's is {self.msg_digest[m]:016x}"
            )
            rows.append(
                DeadLetterRow(
                    self.msg_received[m],
                    self.msg_topic[m],
                    Reason.CONFLICTING_DUPLICATE,
                    detail,
                    self.msg_payload[m][: self.limits.dead_letter_payload_bytes],
                    self.msg_gateway[m],
                    self.msg_seq[m],
                )
            )
        return rows

    def columns(
        self,
        gateway_keys: dict[str, int],
        device_keys: npt.NDArray[np.int32],
        kinds: npt.NDArray[np.int8],
        now_us: int,
        owners: npt.NDArray[np.int32] | None = None,
    ) -> Columns:
        """The batch as arrays. ``device_keys`` follows ``r_device`` (0: a device refused
        registration); ``kinds`` and ``owners`` (each device's gateway key) are by key.

        A reading of a device that another gateway owns is dead-lettered
        (``device_not_of_gateway``): a gateway speaks only for its own devices."""
        dead = list(self.dead_letters)
        messages = MessageColumns(
            gateway=np.fromiter(
                map(gateway_keys.__getitem__, self.msg_gateway), np.int32, len(self.msg_gateway)
            ),
            seq=np.array(self.msg_seq, dtype=np.int64),
            sent_at_us=self._sent_at(now_us, dead),
            received_at_us=np.array(self.msg_received, dtype=np.int64),
            digest=np.array(self.msg_digest, dtype=np.int64),
        )
        time_us = _times_us(self.r_ts)
        count = np.array(self.r_count, dtype=np.int64)
        r_msg = np.array(self.r_msg, dtype=np.int32)
        ownership = self._ownership(device_keys, owners, messages.gateway[r_msg])
        bad_reading = self._check_readings(time_us, count, now_us, dead, ownership)
        reading = np.repeat(np.arange(len(count), dtype=np.int32), count)
        metric = np.fromiter(
            map(self.tables.metric_ids.get, self.v_name, repeat(0)), np.int16, len(self.v_name)
        )
        value = np.array(self.v_value, dtype=np.float64)
        values = ValueColumns(
            time_us[reading], device_keys[reading], metric, value, r_msg[reading], reading
        )
        ok, outside = self._check_values(values, kinds, bad_reading[reading], dead)
        return Columns(messages, values.take(ok), self._cap(dead), values.take(outside))

    def _sent_at(self, now_us: int, dead: list[DeadLetterRow]) -> npt.NDArray[np.int64]:
        """Each message's ``sent_at``; one out of range is dropped (NULL) with a dead letter."""
        limits = self.limits
        earliest, latest = limits.earliest_ms * 1000, now_us + int(limits.future_tolerance_s * 1e6)
        out = np.empty(len(self.msg_sent), dtype=np.int64)
        for m, t in enumerate(self.msg_sent):
            us = NO_TIME if t is None else unix_us(t)
            if us != NO_TIME and not earliest <= us <= latest:
                detail = f"sent_at {t!r} is before 2000-01-01 or ahead of the ingester"
                dead.append(self._dead_row(m, Reason.SENT_AT_OUT_OF_RANGE, detail, {"sent_at": t}))
                us = NO_TIME
            out[m] = us
        return out

    def _cap(self, dead: list[DeadLetterRow]) -> list[DeadLetterRow]:
        """At most ``max_dead_letters_per_message`` rows per message, then one summary."""
        cap = self.limits.max_dead_letters_per_message
        if len(dead) <= cap:
            return dead
        per_message = Counter(d.message for d in dead if d.message != NO_MESSAGE)
        if not per_message or max(per_message.values()) <= cap:
            return dead
        kept: list[DeadLetterRow] = []
        over: dict[int, Counter[str]] = {}
        seen: Counter[int] = Counter()
        for d in dead:
            if d.message == NO_MESSAGE or seen[d.message] < cap:
                seen[d.message] += 1
                kept.append(d)
            else:
                over.setdefault(d.message, Counter())[str(d.reason)] += 1
        for m, reasons in over.items():
            detail = f"{sum(reasons.values())} more refusals in this message: {dict(reasons)}"
            kept.append(self._dead_row(m, Reason.DEAD_LETTERS_CAPPED, detail, dict(reasons)))
        return kept

    def _ownership(
        self,
        device_keys: npt.NDArray[np.int32],
        owners: npt.NDArray[np.int32] | None,
        reading_gateway: npt.NDArray[np.int32],
    ) -> list[_Check]:
        unknown = device_keys == 0
        checks: list[_Check] = [
            (unknown, Reason.UNKNOWN_DEVICE, "the device is not registered and unknown devices"
             " are refused (CITYTEL_UNKNOWN_DEVICES=refuse)"),
        ]  # fmt: skip
        if owners is not None:
            owner = owners[device_keys]
            foreign = ~unknown & (owner != 0) & (owner != reading_gateway)
            detail = "the device belongs to another gateway"
            checks.append((foreign, Reason.DEVICE_NOT_OF_GATEWAY, detail))
        return checks

    def _check_readings(
        self,
        time_us: npt.NDArray[np.int64],
        count: npt.NDArray[np.int64],
        now_us: int,
        dead: list[DeadLetterRow],
        first: list[_Check],
    ) -> npt.NDArray[np.bool_]:
        limits = self.limits
        future = f"timestamp more than {limits.future_tolerance_s:g} s ahead of the ingester"
        checks = (
            *first,
            (
                count > limits.max_metrics_per_reading,
                Reason.TOO_MANY_METRICS,
                f"more than {limits.max_metrics_per_reading} metrics",
            ),
            (
                time_us < limits.earliest_ms * 1000,
                Reason.TIME_TOO_EARLY,
                "timestamp before 2000-01-01",
            ),
            (
                time_us > now_us + int(limits.future_tolerance_s * 1e6),
                Reason.TIME_IN_FUTURE,
                future,
            ),
        )
        starts = np.cumsum(count) - count
        bad = np.zeros(len(count), dtype=np.bool_)
        for mask, reason, detail in checks:
            for i in np.flatnonzero(mask & ~bad).tolist():
                dead.append(self._dead_reading(i, int(starts[i]), reason, detail))
            bad |= mask
        return bad

    def _check_values(
        self,
        v: ValueColumns,
        kinds: npt.NDArray[np.int8],
        rejected: npt.NDArray[np.bool_],
        dead: list[DeadLetterRow],
    ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
        """Which values to keep, and which were dead-lettered as out of range; dead letters
        for the bad ones not already ``rejected``."""
        t = self.tables
        device_kind = kinds[v.device]
        unknown = v.metric == 0
        wrong_kind = ~unknown & (device_kind != 0) & (device_kind != t.metric_kind[v.metric])
        finite = np.isfinite(v.value)
        with np.errstate(invalid="ignore"):
            out_of_range = finite & ((v.value < t.low[v.metric]) | (v.value > t.high[v.metric]))
        bad = unknown | wrong_kind | ~finite | out_of_range
        for i in np.flatnonzero(bad & ~rejected).tolist():
            reason, detail = self._why(v, i, int(device_kind[i]))
            dead.append(self._dead_value(v, i, reason, detail))
        ok: npt.NDArray[np.bool_] = ~(bad | rejected)
        # the reason _why gives: not for unknown metrics or metrics of another kind
        range_dead: npt.NDArray[np.bool_] = out_of_range & ~(unknown | wrong_kind | rejected)
        return ok, range_dead

    def _why(self, v: ValueColumns, i: int, device_kind: int) -> tuple[Reason, str]:
        name, x, metric = self.v_name[i], self.v_value[i], int(v.metric[i])
        if metric == 0:
            return Reason.UNKNOWN_METRIC, f"metric {name!r} is not in the catalog"
        t = self.tables
        if device_kind != 0 and device_kind != t.metric_kind[metric]:
            kind = kind_name(device_kind)
            return Reason.METRIC_NOT_OF_KIND, f"metric {name!r} is not reported by a {kind}"
        if not np.isfinite(x):
            return Reason.NOT_FINITE, f"{name} = {x!r}"
        bounds = f"[{t.low[metric]:g}, {t.high[metric]:g}] {t.metric_units[metric]}"
        return Reason.OUT_OF_RANGE, f"{name} = {x!r} outside {bounds}"

    def _dead_reading(self, i: int, first: int, reason: Reason, detail: str) -> DeadLetterRow:
        n = self.r_count[i]
        metrics = dict(
            zip(self.v_name[first : first + n], self.v_value[first : first + n], strict=True)
        )
        part = {"device_id": self.r_device[i], "ts": self.r_ts[i], "metrics": metrics}
        return self._dead_row(self.r_msg[i], reason, detail, part)

    def _dead_value(self, v: ValueColumns, i: int, reason: Reason, detail: str) -> DeadLetterRow:
        r = int(v.reading[i])
        part = {
            "device_id": self.r_device[r],
            "ts": self.r_ts[r],
            "metric": self.v_name[i],
            "value": self.v_value[i],
        }
        return self._dead_row(self.r_msg[r], reason, detail, part)

    def _dead_row(self, m: int, reason: Reason, detail: str, part: object) -> DeadLetterRow:
        return DeadLetterRow(
            self.msg_received[m],
            self.msg_topic[m],
            reason,
            detail,
            msgspec.json.encode(part),
            self.msg_gateway[m],
            self.msg_seq[m],
            m,
        )


def _detail(field: str | None, detail: str) -> str:
    """A refusal's detail, naming its field once."""
    return detail if field is None or detail.startswith(field) else f"{field}: {detail}"


def digest(payload: bytes) -> int:
    """A message's content digest: 63 bits of BLAKE2b, to tell a resend from a conflict."""
    return int.from_bytes(blake2b(payload, digest_size=8).digest(), "big") >> 1


def _capped(rejections: list[Rejection], cap: int) -> list[Rejection]:
    """At most ``cap`` rejections of one delivery, then one that counts the rest."""
    if len(rejections) <= cap:
        return rejections
    rest = Counter(str(r.reason) for r in rejections[cap:])
    detail = f"{len(rejections) - cap} more refusals in this message: {dict(rest)}"
    return [*rejections[:cap], Rejection(Reason.DEAD_LETTERS_CAPPED, detail, b"")]


def _times_us(stamps: Sequence[Timestamp]) -> npt.NDArray[np.int64]:
    try:  # all epoch milliseconds: the common case, converted in C
        ms = np.array(stamps, dtype=np.int64)
        return np.clip(ms, -_MS_BOUND, _MS_BOUND) * 1000
    except (TypeError, OverflowError):
        return np.fromiter(map(unix_us, stamps), np.int64, len(stamps))
