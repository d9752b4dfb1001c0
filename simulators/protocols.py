"""The simulated city in other vendors' formats: ChirpStack v4, The Things Stack v3,
Sparkplug B and SenML (``citytel simulate --protocol ...``).

Each encoder turns a contract v1 ``Telemetry`` message of one gateway into the
(topic, payload) messages a real system of that kind would publish, deterministically
(the same message gives the same bytes). They import nothing of the ingester: the
Sparkplug payload is written with a small protobuf wire writer of its own, from the
specification's field numbers, so the ingester's decoder is tested against an
independent encoder. ``mapping()`` gives the mapping file (as a dict) under which citytel
stores the readings under the simulator's own device ids, for comparison with the
ground truth.
"""

from __future__ import annotations

import hashlib
import json
import struct
import uuid
from datetime import UTC, datetime
from typing import Any, Final, Protocol

import cbor2

from devices.catalog import BY_NAME
from devices.contract import Telemetry, Timestamp

Out = list[tuple[str, bytes]]
PROTOCOLS: Final = ("chirpstack", "tts", "sparkplug", "senml")


class ProtocolEncoder(Protocol):
    """What every encoder offers the simulation."""

    def birth(self, now_ms: int = 0) -> Out:
        """Messages to publish on (re)connecting, before any telemetry."""
        ...

    def encode(self, message: Telemetry) -> Out:
        """One contract v1 message, in this protocol."""
        ...

    def mapping(self) -> dict[str, Any]:
        """The mapping file (as a dict) that names things as the simulator does."""
        ...


def _digest(*parts: object, size: int = 8) -> bytes:
    return hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=size).digest()


def dev_eui(device_id: str) -> str:
    """A stable DevEUI (16 hex digits, lower case) for a simulated device."""
    return _digest("deveui", device_id).hex()


def _datetime(ts: Timestamp) -> datetime:
    return ts if isinstance(ts, datetime) else datetime.fromtimestamp(ts / 1000, UTC)


def _ms(ts: Timestamp) -> int:
    return ts if isinstance(ts, int) else round(ts.timestamp() * 1000)


class ChirpStack:
    """A ChirpStack v4 application holding one simulated gateway's devices."""

    def __init__(self, gateway_id: str, devices: list[str], *, prefix: str = "") -> None:
        self.application_id = str(uuid.UUID(bytes=_digest("app", gateway_id, size=16)))
        self._gateway_id, self._devices, self._prefix = gateway_id, devices, prefix

    def birth(self, now_ms: int = 0) -> Out:
        return []  # devices join once, on their first uplink in ChirpStack's own order

    def encode(self, message: Telemetry) -> Out:
        out: Out = []
        for index, reading in enumerate(message.readings):
            eui = dev_eui(reading.device_id)
            uplink = {
                "deduplicationId": str(
                    uuid.UUID(bytes=_digest(message.gateway_id, message.seq, index, size=16))
                ),
                "time": _datetime(reading.ts).isoformat(),
                "deviceInfo": {
                    "tenantName": "city",
                    "applicationId": self.application_id,
                    "applicationName": self._gateway_id,
                    "deviceName": reading.device_id,
                    "devEui": eui,
                    "tags": {},
                },
                "fCnt": message.seq,
                "fPort": 1,
                "object": reading.metrics,
                "rxInfo": [_rx(reading.device_id, message.seq)],
            }
            topic = f"{self._prefix}application/{self.application_id}/device/{eui}/event/up"
            out.append((topic, json.dumps(uplink).encode()))
        return out

    def mapping(self) -> dict[str, Any]:
        renames = {dev_eui(d): d for d in self._devices}
        return {"source": {self.application_id: {"gateway": self._gateway_id, "devices": renames}}}


def _rx(device_id: str, seq: int) -> dict[str, Any]:
    noise = _digest("rx", device_id, seq)[0]
    return {"gatewayId": "0016c001f153a14c", "rssi": -110 + noise % 70, "snr": noise % 20 - 7.5}


class TheThingsStack:
    """A The Things Stack v3 application (``{gateway_id}@city``)."""

    def __init__(self, gateway_id: str, devices: list[str], *, prefix: str = "") -> None:
        self._gateway_id, self._devices, self._prefix = gateway_id, devices, prefix
        self.application = self._app_id(gateway_id)

    @staticmethod
    def _app_id(gateway_id: str) -> str:
        # TTS ids: lower-case letters, digits and dashes
        clean = "".join(c if c.isalnum() else "-" for c in gateway_id.lower()).strip("-")
        return clean or "app"

    def birth(self, now_ms: int = 0) -> Out:
        return []

    def encode(self, message: Telemetry) -> Out:
        out: Out = []
        for index, reading in enumerate(message.readings):
            device = self._app_id(reading.device_id)
            ulid = _digest("ulid", message.gateway_id, message.seq, index, size=13).hex().upper()
            up = {
                "end_device_ids": {
                    "device_id": device,
                    "application_ids": {"application_id": self.application},
                    "dev_eui": dev_eui(reading.device_id).upper(),
                },
                "correlation_ids": [f"as:up:{ulid[:26]}"],
                "received_at": _datetime(reading.ts).isoformat(),
                "uplink_message": {
                    "f_port": 1,
                    "f_cnt": message.seq,
                    "decoded_payload": reading.metrics,
                    "rx_metadata": [_rx(reading.device_id, message.seq)],
                    "received_at": _datetime(reading.ts).isoformat(),
                },
            }
            topic = f"{self._prefix}v3/{self.application}@city/devices/{device}/up"
            out.append((topic, json.dumps(up).encode()))
        return out

    def mapping(self) -> dict[str, Any]:
        renames = {dev_eui(d): d for d in self._devices}
        source = {"gateway": self._gateway_id, "devices": renames}
        return {"source": {f"{self.application}@city": source}}


class Sparkplug:
    """A Sparkplug B edge node (the gateway) with its devices, in group ``city``."""

    GROUP: Final = "city"

    def __init__(self, gateway_id: str, devices: dict[str, list[str]], *, prefix: str = "") -> None:
        """``devices``: device id -> the catalog metrics it reports."""
        self._edge, self._devices, self._prefix = gateway_id, devices, prefix
        self._aliases: dict[tuple[str, str], int] = {}
        for device, metrics in sorted(devices.items()):
            for name in metrics:
                self._aliases[(device, name)] = len(self._aliases) + 1
        self.bd_seq = 0
        self._seq = 0

    def _topic(self, kind: str, device: str | None = None) -> str:
        tail = f"/{device}" if device else ""
        return f"{self._prefix}spBv1.0/{self.GROUP}/{kind}/{self._edge}{tail}"

    def death(self) -> tuple[str, bytes]:
        """The NDEATH to register as the MQTT will before connecting."""
        return self._topic("NDEATH"), _payload(0, None, [_metric("bdSeq", None, 8, self.bd_seq)])

    def birth(self, now_ms: int = 0) -> Out:
        """NBIRTH (seq 0) and a DBIRTH per device, with every alias; values null (the
        simulator has none before its first reading)."""
        self._seq = 0
        node = [
            _metric("bdSeq", None, 8, self.bd_seq),
            _metric("Node Control/Rebirth", None, 11, 0),
        ]
        out = [(self._topic("NBIRTH"), _payload(now_ms, 0, node))]
        for device, metrics in sorted(self._devices.items()):
            defs = [_metric(n, self._aliases[(device, n)], 10, None) for n in metrics]
            out.append((self._topic("DBIRTH", device), _payload(now_ms, self._next(), defs)))
        return out

    def reconnected(self, now_ms: int = 0) -> Out:
        """A new MQTT session: bdSeq one more, births again."""
        self.bd_seq = (self.bd_seq + 1) % 256
        return self.birth(now_ms)

    def encode(self, message: Telemetry) -> Out:
        by_device: dict[str, list[bytes]] = {}
        for reading in message.readings:
            ms = _ms(reading.ts)
            metrics = by_device.setdefault(reading.device_id, [])
            for name, value in reading.metrics.items():
                alias = self._aliases.get((reading.device_id, name))
                if alias is None:  # not in its birth: send it by name, as the spec allows
                    metrics.append(_metric(name, None, 10, value, ms))
                else:
                    metrics.append(_metric(None, alias, 0, value, ms))
        # the payload timestamp is mandatory, and with seq part of the message identity
        stamps = [_ms(r.ts) for r in message.readings]
        sent = _ms(message.sent_at) if message.sent_at is not None else max(stamps, default=0)
        return [
            (self._topic("DDATA", device), _payload(sent, self._next(), metrics))
            for device, metrics in by_device.items()
        ]

    def _next(self) -> int:
        self._seq = (self._seq + 1) % 256
        return self._seq

    def mapping(self) -> dict[str, Any]:
        return {"source": {f"{self.GROUP}/{self._edge}": {"gateway": self._edge}}}


class SenML:
    """A gateway publishing SenML packs (JSON, or CBOR with ``binary``)."""

    _UNITS: Final = {"°C": "Cel", "µg/m³": "ug/m3", "dB(A)": "dBA", "1": None}

    def __init__(self, gateway_id: str, *, binary: bool = False, prefix: str = "") -> None:
        channel = "senml/cbor" if binary else "senml"
        self._topic = f"{prefix}city/v1/gateways/{gateway_id}/{channel}"
        self._binary = binary

    def birth(self, now_ms: int = 0) -> Out:
        return []

    def encode(self, message: Telemetry) -> Out:
        records: list[dict[Any, Any]] = []
        for reading in message.readings:
            base = {"bn": f"{reading.device_id}:", "bt": _ms(reading.ts) / 1000}
            for name, value in reading.metrics.items():
                record: dict[Any, Any] = {**base, "n": name, "v": value}
                base = {}
                metric = BY_NAME.get(name)
                unit = self._UNITS.get(metric.unit, metric.unit) if metric else None
                if unit is not None:
                    record["u"] = unit
                records.append(record)
        if self._binary:
            labels = {"bn": -2, "bt": -3, "n": 0, "u": 1, "v": 2}
            body = cbor2.dumps([{labels[k]: v for k, v in r.items()} for r in records])
        else:
            body = json.dumps(records).encode()
        return [(self._topic, body)]

    def mapping(self) -> dict[str, Any]:
        return {}


# A protobuf wire writer for the few Sparkplug B fields the simulator sends
# (field numbers from the specification: Payload.timestamp 1, metrics 2, seq 3;
# Metric.name 1, alias 2, timestamp 3, datatype 4, is_null 7, long_value 11,
# double_value 13, boolean_value 14).


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, wire: int, data: bytes) -> bytes:
    key = _varint(number << 3 | wire)
    return key + (_varint(len(data)) + data if wire == 2 else data)


def _metric(
    name: str | None, alias: int | None, datatype: int, value: float | None, ms: int | None = None
) -> bytes:
    out = b"" if name is None else _field(1, 2, name.encode())
    if alias is not None:
        out += _field(2, 0, _varint(alias))
    if ms is not None:
        out += _field(3, 0, _varint(ms))
    if datatype:
        out += _field(4, 0, _varint(datatype))
    if value is None:
        return out + _field(7, 0, _varint(1))  # is_null
    if datatype == 11:
        return out + _field(14, 0, _varint(int(bool(value))))
    if datatype == 8:
        return out + _field(11, 0, _varint(int(value)))
    return out + _field(13, 1, struct.pack("<d", value))


def _payload(timestamp: int, seq: int | None, metrics: list[bytes]) -> bytes:
    out = _field(1, 0, _varint(timestamp)) if timestamp else b""
    out += b"".join(_field(2, 2, m) for m in metrics)
    return out if seq is None else out + _field(3, 0, _varint(seq))


def encoder_for(
    protocol: str, gateway_id: str, devices: dict[str, list[str]], *, prefix: str = ""
) -> ProtocolEncoder:
    """The encoder of ``protocol`` (one of ``PROTOCOLS``) for one gateway whose
    ``devices`` (device id -> catalog metrics) it publishes."""
    if protocol == "chirpstack":
        return ChirpStack(gateway_id, sorted(devices), prefix=prefix)
    if protocol == "tts":
        return TheThingsStack(gateway_id, sorted(devices), prefix=prefix)
    if protocol == "sparkplug":
        return Sparkplug(gateway_id, devices, prefix=prefix)
    if protocol == "senml":
        return SenML(gateway_id, prefix=prefix)
    raise ValueError(f"unknown protocol {protocol!r}; known: {PROTOCOLS}")
