"""SenML packs (RFC 8428) in JSON and CBOR, on a gateway's own topics.

Topics ``city/v1/gateways/{gateway_id}/senml`` (JSON) and ``.../senml/cbor``. Records are
resolved as the RFC says: the name is base name + name, the time base time + time (a
time below 2**28 is relative to the message's arrival), the value base value + value,
the unit the record's or the base unit. Then:

- the device is the base name without its trailing separator (``:``, ``/``, ``.``, ``-``
  or ``_``); a record without a base name is itself the device;
- the metric is the record's own name: a mapping rule, a catalog metric of that name, or
  the one catalog metric named ``{name}_...`` whose unit the record's converts to (so
  ``voltage`` in ``V`` is ``voltage_v``); with no name, the one catalog metric in the
  record's unit, or of several the generic one whose name the others end with (``Cel`` is
  ``temperature_c``, not ``air_temperature_c``);
- a unit that does not convert to the catalog metric's unit is refused (``bad_unit``);
- ``vb`` is stored as 0/1, ``s`` (sum) where there is no ``v`` (beside one it is refused);
  ``vs`` and ``vd`` are refused as unsupported, as is a record with two value fields.
  Records at the same device and time form one reading.

The identity is a hash of the gateway and the payload when every time in the pack is
absolute, so that a copy delivered again is the same message; when a pack has relative
times it also includes the arrival time, as two identical packs sent a minute apart are
two messages (so a copy delivered again after an ingester crash cannot be recognised).
"""

from __future__ import annotations

import hashlib
import math
from typing import Any, Final

import cbor2
import msgspec

from devices.contract import Reading
from ingest.formats import FormatReason, Parsed, Refusal
from ingest.formats.ids import identity, valid_id
from ingest.formats.mapping import MappedParser, Resolver, Target, number
from ingest.formats.units import conversion
from ingest.reasons import Reason

JSON_CHANNEL: Final = "senml"
CBOR_CHANNEL: Final = "senml/cbor"
RELATIVE_BELOW: Final = 2**28
"""Times (seconds) below this are relative to now (RFC 8428 section 4.5.3)."""
_SEPARATORS: Final = ":/.-_"
_BASES: Final = frozenset({"bn", "bt", "bu", "bv", "bs"})
_VALUES: Final = ("v", "vs", "vb", "vd", "s")
_KNOWN: Final = _BASES | frozenset({"bver", "n", "u", "t", "ut", *_VALUES})
_PLAIN: Final = frozenset({"n", "u", "v", "t"})
_BIG: Final = 1e300
_CBOR_LABELS: Final = {
    -1: "bver", -2: "bn", -3: "bt", -4: "bu", -5: "bv", -6: "bs",
    0: "n", 1: "u", 2: "v", 3: "vs", 4: "vb", 5: "s", 6: "t", 7: "ut", 8: "vd",
}  # fmt: skip
_DECODE_ERRORS: Final = (
    msgspec.DecodeError,
    cbor2.CBORDecodeError, RecursionError, ValueError, TypeError, OverflowError, MemoryError,
    LookupError,
)  # fmt: skip
_JSON: Final = msgspec.json.Decoder()


def subscriptions(*, prefix: str = "") -> list[str]:
    """The topic filters of every gateway's SenML channels."""
    return [f"{prefix}city/v1/gateways/+/{c}" for c in (JSON_CHANNEL, CBOR_CHANNEL)]


class Parser(MappedParser):
    """Parses SenML packs; ``mapping`` maps each gateway's record names."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._by_unit: dict[str, str | None] = {}
        self._stems: dict[tuple[str, str], str] = {}

    def parse(self, topic: str, payload: bytes, received_us: int | None = None) -> Parsed:
        """Parse one pack."""
        where = self._topic(topic)
        if where is None:
            return Parsed().refuse(Reason.INVALID_TOPIC, "not a SenML gateway topic")
        gateway, binary = where
        parsed = Parsed(gateway_id=gateway)
        if len(payload) > self._limits.max_payload_bytes:
            detail = f"{len(payload)} bytes, limit {self._limits.max_payload_bytes}"
            return parsed.refuse(Reason.PAYLOAD_TOO_LARGE, detail)
        pack = _decode(payload, binary)
        if isinstance(pack, Refusal):
            parsed.refusals.append(pack)
            return parsed
        if len(pack) > self._limits.max_readings_per_message:
            detail = f"{len(pack)} records, limit {self._limits.max_readings_per_message}"
            return parsed.refuse(Reason.TOO_MANY_READINGS, detail)
        resolver = self._resolvers.get(gateway)
        parsed.gateway_id = resolver.source.gateway or gateway
        relative = _Pack(self, resolver, parsed, received_us).run(pack, binary)
        parts = ("senml", parsed.gateway_id, hashlib.blake2b(payload, digest_size=16).hexdigest())
        parsed.identity = identity(*parts, received_us) if relative else identity(*parts)
        return parsed

    def metric_of_unit(self, unit: str | None) -> str | None:
        """The catalog metric a record in ``unit`` without a name is: the only one in that
        unit (after conversion), or the generic one of several; else None."""
        if unit is None:
            return None
        if unit not in self._by_unit:
            if len(self._by_unit) > 1024:
                self._by_unit.clear()
            found = [m for m, u in self._units.items() if conversion(unit, u) is not None]
            # several: the generic one, whose name the others end with (temperature_c
            # before air_temperature_c and bin_temperature_c), if there is exactly one
            generic = [m for m in found if all(o == m or o.endswith(f"_{m}") for o in found)]
            self._by_unit[unit] = generic[0] if len(generic) == 1 else None
        return self._by_unit[unit]

    def stem(self, name: str, unit: str | None) -> str:
        """The catalog metric a record name stands for (itself when no rule applies)."""
        if name in self._units or unit is None:
            return name
        key = (name, unit)
        found = self._stems.get(key)
        if found is None:
            if len(self._stems) > 4096:
                self._stems.clear()  # bounded: hostile senders may invent names
            candidates = [
                m
                for m, u in self._units.items()
                if m.startswith(f"{name}_") and conversion(unit, u) is not None
            ]
            found = self._stems[key] = candidates[0] if len(candidates) == 1 else name
        return found

    def _topic(self, topic: str) -> tuple[str, bool] | None:
        root = f"{self._prefix}city/v1/gateways/"
        if not topic.startswith(root):
            return None
        gateway, _, channel = topic[len(root) :].partition("/")
        if channel not in (JSON_CHANNEL, CBOR_CHANNEL) or not valid_id(gateway):
            return None
        return gateway, channel == CBOR_CHANNEL


def _decode(payload: bytes, binary: bool) -> list[Any] | Refusal:
    try:
        pack = cbor2.loads(payload) if binary else _JSON.decode(payload)
    except _DECODE_ERRORS as exc:
        kind = "CBOR" if binary else "JSON"
        return Refusal(Reason.MALFORMED, f"not {kind}: {exc}"[:500])
    if not isinstance(pack, list):
        return Refusal(Reason.INVALID_MESSAGE, "a SenML pack is an array of records")
    return pack


class _Pack:
    """One pack's resolution: base values carried from record to record."""

    def __init__(
        self, parser: Parser, resolver: Resolver, parsed: Parsed, received_us: int | None
    ) -> None:
        self.parser, self.resolver, self.parsed, self.received_us = (
            parser, resolver, parsed, received_us,
        )  # fmt: skip
        self.bn: str = ""
        self.bu: str | None = None
        self.bt, self.bv, self.bs = 0.0, 0.0, 0.0
        self.device = ""
        self.valid_device = ""
        self.relative = False
        self.readings: dict[tuple[str, int], dict[str, float]] = {}

    def run(self, pack: list[Any], binary: bool) -> bool:
        """Resolve every record into readings and refusals; whether any time was relative."""
        for index, raw in enumerate(pack):
            record = _labelled(raw) if binary else raw
            if not isinstance(record, dict):
                self._refuse(Reason.INVALID_READING, "a record is an object", index)
                continue
            if record.keys() <= _PLAIN and self._plain(record):
                continue
            problem = self._record(record, index)
            if problem is not None:
                self._refuse(problem[0], problem[1], index)
        self.parsed.readings.extend(
            Reading(device, ts, metrics)
            for (device, ts), metrics in self.readings.items()
            if metrics
        )
        return self.relative

    def _plain(self, r: dict[Any, Any]) -> bool:
        """The common record -- a number under a name, after a base name -- stored without
        the general path's calls; False (nothing done) for anything else, refusals included."""
        name, unit, t = r.get("n"), r.get("u", self.bu), r.get("t", 0)
        v: Any = r.get("v")
        if type(name) is not str or not name or not self.device:
            return False
        if (unit is not None and type(unit) is not str) or self.valid_device != self.device:
            return False
        if type(t) not in (int, float) or type(v) not in (int, float):
            return False
        if abs(t) > _BIG or abs(v) > _BIG:  # huge integers overflow float arithmetic
            return False
        seconds = self.bt + t
        if seconds < RELATIVE_BELOW:
            if self.received_us is None:
                return False
            self.relative = True
            when = round(self.received_us / 1000 + seconds * 1000)
        else:
            when = round(seconds * 1000)
        metric = name if name in self.resolver.source.fields else self.parser.stem(name, unit)
        target = self.resolver.target(metric, unit)
        if not isinstance(target, Target):
            return False
        metrics = self.readings.setdefault((self.device, when), {})
        value = (v + self.bv) * target.scale + target.offset
        if target.metric in metrics or not math.isfinite(value):
            return False
        metrics[target.metric] = value
        return True

    def _record(self, r: dict[Any, Any], index: int) -> tuple[str, str] | None:
        keys = r.keys()
        if not keys <= _KNOWN:
            must = [k for k in keys if isinstance(k, str) and k.endswith("_")]
            if must:
                return Reason.INVALID_READING, f"must-understand fields {must[:4]} not understood"
        if not keys.isdisjoint(_BASES):
            problem = self._bases(r)
            if problem is not None:
                return problem
        values = [k for k in _VALUES if k in r]
        if not values:
            return None if not keys.isdisjoint(_BASES) else (
                Reason.INVALID_READING, "a record without a value")  # fmt: skip
        if len([k for k in values if k != "s"]) > 1:
            return Reason.INVALID_READING, f"more than one value field: {values}"
        if "s" in values and len(values) > 1:
            self._refuse(FormatReason.UNSUPPORTED, "a sum beside a value is not stored", index)
        name, unit, t = r.get("n", ""), r.get("u", self.bu), r.get("t", 0)
        if not isinstance(name, str) or not (unit is None or isinstance(unit, str)):
            return Reason.INVALID_READING, "n and u are strings"
        when = self._time(t)
        if isinstance(when, tuple):
            return when
        device, metric = self._names(name, unit)
        if device != self.valid_device and not valid_id(device):
            return FormatReason.INVALID_ID, f"device id {device[:80]!r} does not fit the pattern"
        self.valid_device = device
        return self._value(r, values, device, metric, unit, when, index)

    def _bases(self, r: dict[Any, Any]) -> tuple[str, str] | None:
        bn, bu = r.get("bn", self.bn), r.get("bu", self.bu)
        if not isinstance(bn, str) or not (bu is None or isinstance(bu, str)):
            return Reason.INVALID_READING, "bn and bu are strings"
        bases = []
        for key, current in (("bt", self.bt), ("bv", self.bv), ("bs", self.bs)):
            raw = r.get(key, current)
            value, bad = number(raw)
            if bad is not None or isinstance(raw, bool):
                return Reason.INVALID_READING, f"{key} is not a finite number"
            bases.append(value)
        self.bn, self.bu = bn, bu
        self.bt, self.bv, self.bs = bases
        self.device = bn.rstrip(_SEPARATORS)
        return None

    def _time(self, t: Any) -> int | tuple[str, str]:
        value, bad = number(t)
        if bad is not None or isinstance(t, bool):
            return Reason.INVALID_READING, "t is not a finite number"
        seconds = self.bt + value
        if seconds >= RELATIVE_BELOW:
            return round(seconds * 1000)
        self.relative = True
        if self.received_us is None:
            return Reason.INVALID_READING, "a relative time, and no arrival time to add it to"
        return round(self.received_us / 1000 + seconds * 1000)

    def _names(self, name: str, unit: str | None) -> tuple[str, str]:
        if not self.bn:
            device, metric = name, ""
        else:
            device, metric = self.device, name
        if not metric:
            metric = self.parser.metric_of_unit(unit) or ""
        elif metric not in self.resolver.source.fields:
            metric = self.parser.stem(metric, unit)
        return device, metric

    def _value(
        self,
        r: dict[Any, Any],
        values: list[str],
        device: str,
        metric: str,
        unit: str | None,
        when: int,
        index: int,
    ) -> tuple[str, str] | None:
        if "v" in values:
            raw, base = r["v"], self.bv
        elif "vb" in values:
            raw, base = r["vb"], 0.0
            if not isinstance(raw, bool):
                return Reason.INVALID_READING, "vb is a boolean"
        elif "s" in values:
            raw, base = r["s"], self.bs
        else:
            return FormatReason.UNSUPPORTED, f"{values[0]}: string and data values are not stored"
        value, bad = number(raw)
        if bad is not None:
            return bad[0], f"{metric or 'record'}: {bad[1]}"
        if not math.isfinite(value + base):
            return Reason.NOT_FINITE, f"{metric}: base value + value overflows"
        if not metric:
            return FormatReason.UNMAPPED_FIELD, f"no catalog metric for a record in {unit!r}"
        metrics = self.readings.setdefault((device, when), {})
        refusals: list[Refusal] = []
        self.resolver.add(metric, value + base, metrics, refusals, unit)
        for refusal in refusals:
            self._refuse(refusal.reason, refusal.detail, index)
        return None

    def _refuse(self, reason: str, detail: str, index: int) -> None:
        self.parsed.refuse(reason, detail[:300], f"record {index}")


def _labelled(raw: Any) -> Any:
    """A CBOR record with the RFC's integer labels replaced by the JSON names."""
    if not isinstance(raw, dict):
        return raw
    try:
        return {_CBOR_LABELS.get(k, k) if isinstance(k, int) else k: v for k, v in raw.items()}
    except TypeError:  # an unhashable key
        return None
