"""Sparkplug B (Eclipse Sparkplug 3.0) edge-node and device messages (protobuf).

Topics ``spBv1.0/{group}/{NBIRTH|NDATA|NDEATH}/{edge_node}`` and
``spBv1.0/{group}/{DBIRTH|DDATA|DDEATH}/{edge_node}/{device}``. An edge node is a gateway
(its id, or the mapping's ``gateway``); its own metrics are readings of a device named
like the edge node, a device keeps its id. The mapping is looked up by ``group/edge_node``,
then ``group``.

The parser holds, per edge node (bounded, least recently seen dropped first), what the
specification makes a host application track: the ``bdSeq`` of the current session, the
last ``seq`` (0-255, one per message from NBIRTH on) and the metric aliases learned from
NBIRTH and DBIRTH. A DATA message with an alias it does not know, from a node it has not
seen born, or out of sequence makes it reply an NCMD ``Node Control/Rebirth`` request
(one per node until the node is born again; if it is not, again after ``REBIRTH_EVERY``
more messages that would have asked for one).

The identity is the message's own content -- group, edge node, device, message type,
``seq``, payload timestamp (mandatory in the specification) and, for NBIRTH/NDEATH, the
``bdSeq`` -- so a copy delivered again after an ingester restart has the same identity.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from google.protobuf.message import DecodeError

from devices.contract import DeviceInfo, Reading
from ingest.formats import FormatReason, Parsed, Refusal
from ingest.formats.ids import identity, valid_id
from ingest.formats.mapping import MappingFile, Resolver, resolvers
from ingest.formats.sparkplug_b import NUMERIC, SIGNED_BITS, DataType, Metric, Payload
from ingest.formats.units import CATALOG_UNITS
from ingest.limits import Limits
from ingest.reasons import Reason

NAMESPACE: Final = "spBv1.0"
NODE_TYPES: Final = ("NBIRTH", "NDATA", "NDEATH")
DEVICE_TYPES: Final = ("DBIRTH", "DDATA", "DDEATH")
REBIRTH: Final = "Node Control/Rebirth"
BDSEQ: Final = "bdSeq"
_CONTROL: Final = ("Node Control/", "Device Control/")
MAX_NODES: Final = 10_000
MAX_ALIASES: Final = 65_536
"""Per edge node, node and devices together."""
REBIRTH_EVERY: Final = 100
"""Asking messages after which an unanswered rebirth request is sent again."""


def host_state(
    host_id: str, *, online: bool, timestamp_ms: int, prefix: str = ""
) -> tuple[str, bytes]:
    """The Sparkplug 3.0 host application STATE message (publish retained, QoS 1).

    An edge node configured with a primary host waits for ``online`` before its NBIRTH; the
    ingester publishes it on connecting, and registers the ``offline`` one (same
    timestamp) as its MQTT will.
    """
    body = json.dumps({"online": online, "timestamp": timestamp_ms}, separators=(",", ":"))
    return f"{prefix}{NAMESPACE}/STATE/{host_id}", body.encode()


def subscriptions(*, prefix: str = "") -> list[str]:
    """The topic filters of the six message types this parser reads."""
    node = [f"{prefix}{NAMESPACE}/+/{t}/+" for t in NODE_TYPES]
    return node + [f"{prefix}{NAMESPACE}/+/{t}/+/+" for t in DEVICE_TYPES]


@dataclass(frozen=True, slots=True)
class _Topic:
    group: str
    type: str
    edge: str
    device: str | None


@dataclass(slots=True)
class _Node:
    """What a host application keeps of one edge node's session."""

    bd_seq: int | None = None
    seq: int | None = None
    aliases: dict[int, tuple[str, int]] = field(default_factory=dict)
    """alias -> (metric name, datatype), from NBIRTH and DBIRTH."""
    rebirth_wait: int = 0
    """Messages left before another rebirth request; 0: none pending."""


@dataclass(frozen=True, slots=True)
class _Msg:
    """One message being parsed, with what it is about."""

    p: Parsed
    t: _Topic
    device: str
    m: Any
    node: _Node
    r: Resolver
    now: int | None
    stamp: int | str
    """The payload timestamp, or a digest of the payload when it has none."""


class Parser:
    """Parses Sparkplug B messages, holding each edge node's session state."""

    def __init__(
        self,
        *,
        mapping: MappingFile | None = None,
        units: Mapping[str, str] | None = None,
        limits: Limits | None = None,
        prefix: str = "",
        max_nodes: int = MAX_NODES,
    ) -> None:
        self._resolvers = resolvers(mapping, CATALOG_UNITS if units is None else units)
        self._limits = limits or Limits()
        self._prefix = prefix
        self._max_nodes = max_nodes
        self._nodes: OrderedDict[tuple[str, str], _Node] = OrderedDict()

    def parse(self, topic: str, payload: bytes, received_us: int | None = None) -> Parsed:
        """Parse one message; may update the edge node's session and ask for a rebirth."""
        where = self._topic(topic)
        if where is None:
            return Parsed().refuse(Reason.INVALID_TOPIC, "not a Sparkplug B node/device topic")
        if len(payload) > self._limits.max_payload_bytes:
            detail = f"{len(payload)} bytes, limit {self._limits.max_payload_bytes}"
            return Parsed().refuse(Reason.PAYLOAD_TOO_LARGE, detail)
        try:
            message = Payload.FromString(payload)
        except (DecodeError, RecursionError, ValueError) as exc:
            return Parsed().refuse(Reason.MALFORMED, f"not a Sparkplug B payload: {exc}"[:500])
        resolver = self._resolvers.get(f"{where.group}/{where.edge}", where.group)
        parsed = Parsed(gateway_id=resolver.source.gateway or where.edge)
        device = where.device or where.edge
        device = resolver.source.devices.get(device, device)
        for what, value in (("gateway", parsed.gateway_id or ""), ("device", device)):
            if not valid_id(value):
                detail = f"{what} id {value!r} does not fit the pattern"
                return parsed.refuse(FormatReason.INVALID_ID, detail[:300])
        if len(message.metrics) > self._limits.max_readings_per_message:
            detail = (
                f"{len(message.metrics)} metrics, limit {self._limits.max_readings_per_message}"
            )
            return parsed.refuse(Reason.TOO_MANY_READINGS, detail)
        if message.HasField("timestamp"):
            parsed.sent_at_us = _us(message.timestamp)
            stamp: int | str = message.timestamp
        else:  # mandatory in the specification; without it seq alone would repeat every 256
            stamp = hashlib.blake2b(payload, digest_size=8).hexdigest()
        node = self._node(where)
        handler = _HANDLERS[where.type]
        handler(self, _Msg(parsed, where, device, message, node, resolver, received_us, stamp))
        return parsed

    # message types

    def _birth(self, c: _Msg) -> None:
        p, t, device, m, node, r, now = c.p, c.t, c.device, c.m, c.node, c.r, c.now
        bd_seq = _bd_seq(m)
        p.identity = identity(
            "sparkplug", t.group, t.edge, t.device, t.type, bd_seq, m.seq, c.stamp
        )
        if t.type == "NBIRTH":
            node.bd_seq, node.aliases, node.rebirth_wait = bd_seq, {}, 0
            node.seq = m.seq if m.HasField("seq") else 0
            p.status = "online"
        else:
            if node.bd_seq is None:
                self._rebirth(p, t, node, now, "a device birth from a node not seen born")
            self._sequence(p, t, m, node, now)
            p.status, p.status_device = "online", device
            if r.source.kind is not None:
                p.devices.append(DeviceInfo(device, r.source.kind, attributes={"group": t.group}))
        for metric in m.metrics:
            if metric.HasField("alias") and metric.name:
                if len(node.aliases) >= MAX_ALIASES and metric.alias not in node.aliases:
                    p.refuse(FormatReason.UNSUPPORTED, f"over {MAX_ALIASES} aliases", metric.name)
                    continue
                node.aliases[metric.alias] = (metric.name, metric.datatype)
        self._readings(c)

    def _data(self, c: _Msg) -> None:
        p, t, m, node, now = c.p, c.t, c.m, c.node, c.now
        p.identity = identity("sparkplug", t.group, t.edge, t.device, t.type, m.seq, c.stamp)
        if node.bd_seq is None:
            self._rebirth(p, t, node, now, "a node not seen born")
        self._sequence(p, t, m, node, now)
        self._readings(c)

    def _death(self, c: _Msg) -> None:
        p, t, device, m, node, now = c.p, c.t, c.device, c.m, c.node, c.now
        if t.type == "DDEATH":
            p.identity = identity("sparkplug", t.group, t.edge, t.device, t.type, m.seq, c.stamp)
            self._sequence(p, t, m, node, now)
            p.status, p.status_device = "offline", device
            return
        bd_seq = _bd_seq(m)
        p.identity = identity("sparkplug", t.group, t.edge, None, t.type, bd_seq, c.stamp)
        if node.bd_seq is not None and bd_seq is not None and bd_seq != node.bd_seq:
            return  # the will of an earlier session: the node is already born again
        node.bd_seq, node.seq, node.aliases = None, None, {}
        p.status = "offline"

    # helpers

    def _readings(self, c: _Msg) -> None:
        p, t, device, m, node, r, now = c.p, c.t, c.device, c.m, c.node, c.r, c.now
        by_time: dict[int, dict[str, float]] = {}
        unknown = False
        for metric in m.metrics:
            name, datatype = metric.name, metric.datatype
            if not name and metric.HasField("alias"):
                known = node.aliases.get(metric.alias)
                if known is None:
                    p.refuse(
                        FormatReason.UNKNOWN_ALIAS,
                        f"alias {metric.alias} not in a BIRTH",
                        f"alias:{metric.alias}",
                    )
                    unknown = True
                    continue
                name, datatype = known[0], datatype or known[1]
            if not name or name == BDSEQ or name.startswith(_CONTROL):
                continue
            if metric.is_null or metric.is_transient:  # no value; not to be historized
                continue
            value = _value(metric, datatype)
            if isinstance(value, Refusal):
                p.refusals.append(Refusal(value.reason, f"{name}: {value.detail}"[:300], name))
                continue
            stamp = metric.timestamp if metric.HasField("timestamp") else m.timestamp
            if not stamp:
                if now is None:
                    p.refuse(Reason.INVALID_MESSAGE, "metric without a timestamp", name)
                    continue
                stamp = now // 1000
            r.add(name, value, by_time.setdefault(stamp, {}), p.refusals)
        if unknown:
            self._rebirth(p, t, node, now, "an unknown alias")
        for stamp, metrics in by_time.items():
            if metrics:
                p.readings.append(Reading(device, stamp, metrics))

    def _sequence(self, p: Parsed, t: _Topic, m: Any, node: _Node, now: int | None) -> None:
        if not m.HasField("seq") or m.seq > 255:
            p.refuse(Reason.INVALID_MESSAGE, "seq missing or not 0-255", "seq")
            return
        if node.seq is not None and m.seq != node.seq and m.seq != (node.seq + 1) % 256:
            self._rebirth(p, t, node, now, f"seq {m.seq} after {node.seq}")
        if node.seq is None or m.seq != node.seq:
            node.seq = m.seq

    def _rebirth(self, p: Parsed, t: _Topic, node: _Node, now: int | None, why: str) -> None:
        if node.rebirth_wait > 0:
            node.rebirth_wait -= 1
            return
        node.rebirth_wait = REBIRTH_EVERY
        request = Payload(
            timestamp=(now or 0) // 1000,
            metrics=[Metric(name=REBIRTH, datatype=DataType.BOOLEAN, boolean_value=True)],
        )
        topic = f"{self._prefix}{NAMESPACE}/{t.group}/NCMD/{t.edge}"
        p.replies.append((topic, request.SerializeToString()))

    def _node(self, t: _Topic) -> _Node:
        key = (t.group, t.edge)
        node = self._nodes.get(key)
        if node is None:
            node = self._nodes[key] = _Node()
            while len(self._nodes) > self._max_nodes:
                self._nodes.popitem(last=False)
        else:
            self._nodes.move_to_end(key)
        return node

    def _topic(self, topic: str) -> _Topic | None:
        if not topic.startswith(self._prefix):
            return None
        parts = topic[len(self._prefix) :].split("/")
        if len(parts) < 4 or parts[0] != NAMESPACE or not all(parts):
            return None
        if len(parts) == 4 and parts[2] in NODE_TYPES:
            return _Topic(parts[1], parts[2], parts[3], None)
        if len(parts) == 5 and parts[2] in DEVICE_TYPES:
            return _Topic(parts[1], parts[2], parts[3], parts[4])
        return None


_HANDLERS: Final = {
    "NBIRTH": Parser._birth,
    "DBIRTH": Parser._birth,
    "NDATA": Parser._data,
    "DDATA": Parser._data,
    "NDEATH": Parser._death,
    "DDEATH": Parser._death,
}


def _bd_seq(m: Any) -> int | None:
    for metric in m.metrics:
        if metric.name == BDSEQ:
            kind = metric.WhichOneof("value")
            if kind in ("long_value", "int_value"):
                return int(getattr(metric, kind))
    return None


def _value(metric: Any, datatype: int) -> float | bool | Refusal:
    kind = metric.WhichOneof("value")
    if datatype and datatype not in NUMERIC:
        return Refusal(FormatReason.UNSUPPORTED, f"datatype {datatype} is not a number")
    if kind is None or kind in ("string_value", "bytes_value"):
        return Refusal(FormatReason.UNSUPPORTED, f"value {kind or 'of an unsupported type'}")
    value = getattr(metric, kind)
    bits = SIGNED_BITS.get(datatype)
    if bits is not None and kind in ("int_value", "long_value"):
        value &= (1 << bits) - 1
        if value >> (bits - 1):
            value -= 1 << bits
    return bool(value) if kind == "boolean_value" else float(value)


def _us(ms: int) -> int:
    return min(ms, 2**52) * 1000
