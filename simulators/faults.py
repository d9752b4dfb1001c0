"""Faults the simulator injects, where it places them, and the ground truth about them.

A fault has a kind, a gateway, a device (``None`` for a gateway-wide fault), the metrics
it corrupts (empty: all of the device's) and a half-open interval ``[start, end)`` of
event time: it affects exactly the readings the healthy device would have taken at
``start <= ts < end`` (for ``clock_skew``, the true time before the skew). Intervals
start and end on the generator's ticks.

Placement makes every fault observable: lamp faults but the day-burner at night (the sun
below -6° over the whole city throughout), the day-burner in daylight (above 10°); at
most one fault at a time per device and per gateway, 30 minutes apart; no device fault
while its gateway is offline (its readings would be lost, not faulty).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TextIO

import numpy as np
import numpy.typing as npt

from devices.catalog import BY_NAME, Kind
from simulators.city import CHICAGO_AREA, Area, SimGateway
from simulators.physics import METRICS, STANDBY_W, current_a, sun_elevation

F64 = npt.NDArray[np.float64]

LIGHT_FAULTS: Final = ("lamp_out", "day_burner", "flicker", "power_out_of_band")
SENSOR_FAULTS: Final = ("stuck", "drift", "spike", "dropout", "out_of_range")
TRAFFIC_FAULTS: Final = ("incident", "dead_detector")
GATEWAY_FAULTS: Final = (
    "gateway_offline",
    "backlog_replay",
    "late_delivery",
    "out_of_order",
    "duplicate",
    "clock_skew",
)
DEVICE_FAULTS: Final[Mapping[Kind, tuple[str, ...]]] = {
    Kind.STREETLIGHT: LIGHT_FAULTS,
    Kind.ENVIRONMENT: SENSOR_FAULTS,
    Kind.TRAFFIC: TRAFFIC_FAULTS,
}
FAULT_KINDS: Final = LIGHT_FAULTS + SENSOR_FAULTS + TRAFFIC_FAULTS + GATEWAY_FAULTS

LAMP_METRICS: Final[Mapping[str, tuple[str, ...]]] = {
    "lamp_out": ("power_w", "lamp_on", "current_a"),
    "day_burner": ("power_w", "lamp_on", "dim_pct", "current_a"),
    "flicker": ("power_w", "lamp_on", "current_a"),
    "power_out_of_band": ("power_w", "current_a"),
    "incident": ("speed_kmh", "volume_veh", "occupancy_pct"),
}
"""The metrics a device fault of these kinds corrupts; sensor faults pick one metric."""


@dataclass(frozen=True, slots=True)
class Spec:
    """How long a fault of a kind lasts (drawn log-uniformly) and when it can happen."""

    min_s: float
    max_s: float
    min_ticks: int = 1
    max_ticks: int | None = None
    sun: str | None = None
    """``"night"`` or ``"day"``: the whole fault in darkness or in daylight."""


SPECS: Final[Mapping[str, Spec]] = {
    "lamp_out": Spec(1800, 6 * 3600, 2, sun="night"),
    "day_burner": Spec(1800, 4 * 3600, sun="day"),
    "flicker": Spec(1200, 3 * 3600, 3, sun="night"),
    "power_out_of_band": Spec(1800, 5 * 3600, sun="night"),
    "stuck": Spec(1800, 6 * 3600, 3),
    "drift": Spec(3 * 3600, 24 * 3600, 3),
    "spike": Spec(0, 0, 1, max_ticks=2),
    "dropout": Spec(1200, 8 * 3600),
    "out_of_range": Spec(0, 600),
    "incident": Spec(900, 2 * 3600),
    "dead_detector": Spec(3600, 12 * 3600),
    "gateway_offline": Spec(300, 2 * 3600),
    "backlog_replay": Spec(300, 3 * 3600),
    "late_delivery": Spec(600, 2 * 3600),
    "out_of_order": Spec(300, 3600, 2),
    "duplicate": Spec(300, 3600),
    "clock_skew": Spec(1800, 12 * 3600),
}

SPIKE: Final = {
    "temperature_c": 12.0,
    "humidity_pct": 30.0,
    "pressure_hpa": 25.0,
    "pm2_5_ugm3": 150.0,
    "pm10_ugm3": 250.0,
    "no2_ppb": 150.0,
    "o3_ppb": 100.0,
    "noise_dba": 30.0,
}
"""Typical spike heights: far beyond a sensor's noise, inside its valid range."""
DRIFT: Final = {
    "temperature_c": 5.0,
    "humidity_pct": 15.0,
    "pressure_hpa": 10.0,
    "pm2_5_ugm3": 25.0,
    "pm10_ugm3": 40.0,
    "no2_ppb": 30.0,
    "o3_ppb": 25.0,
    "noise_dba": 10.0,
}
"""Typical drift reached at a drift fault's end."""
GARBAGE: Final = (-9999.0, 65535.0)
"""What a broken sensor sends: outside every environmental metric's valid range."""

_GAP_S = 1800  # between two faults of one device or gateway
_NIGHT_DEG, _DAY_DEG = -6.0, 10.0
_EPOCH_S = 86_400


def rfc3339(ms: int) -> str:
    """Epoch milliseconds as RFC 3339 UTC (``Z``), with milliseconds only when needed."""
    when = datetime.fromtimestamp(ms / 1000, UTC)
    text = when.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{ms % 1000:03d}Z" if ms % 1000 else f"{text}Z"


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Fault:
    """One injected fault: a line of the ground truth.

    ``params`` (not in the ground truth) are the fault's magnitudes: spike height, drift,
    delay, skew, ...; the generator draws any that are missing.
    """

    fault: str
    gateway_id: str
    device_id: str | None
    metrics: tuple[str, ...]
    start: datetime
    end: datetime
    params: Mapping[str, float] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.fault not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.fault!r}")
        if (self.device_id is None) != (self.fault in GATEWAY_FAULTS):
            raise ValueError(f"{self.fault}: device_id must be None exactly for gateway faults")
        if not self.start < self.end:
            raise ValueError(f"{self.fault}: start {self.start} is not before end {self.end}")

    @property
    def start_ms(self) -> int:
        return round(self.start.timestamp() * 1000)

    @property
    def end_ms(self) -> int:
        return round(self.end.timestamp() * 1000)

    def to_json(self) -> dict[str, Any]:
        """The ground-truth object: exactly these keys."""
        return {
            "fault": self.fault,
            "gateway_id": self.gateway_id,
            "device_id": self.device_id,
            "metrics": list(self.metrics),
            "start": rfc3339(self.start_ms),
            "end": rfc3339(self.end_ms),
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Fault:
        return cls(
            obj["fault"],
            obj["gateway_id"],
            obj["device_id"],
            tuple(obj["metrics"]),
            parse_time(obj["start"]),
            parse_time(obj["end"]),
        )

    def covers(self, ts_ms: int) -> bool:
        return self.start_ms <= ts_ms < self.end_ms


def write_ground_truth(faults: Iterable[Fault], out: TextIO) -> int:
    """Write JSON Lines, one fault a line; returns how many."""
    n = 0
    for f in faults:
        out.write(json.dumps(f.to_json(), separators=(", ", ": ")) + "\n")
        n += 1
    return n


def read_ground_truth(path: Path | str) -> list[Fault]:
    with open(path, encoding="utf-8") as src:
        return [Fault.from_json(json.loads(line)) for line in src if line.strip()]


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


class Planner:
    """Places faults at ``rate`` per device per day and per gateway per day, one day
    (an epoch, counted from the start) at a time, each epoch from its own random stream:
    the same seed and range give the same faults."""

    def __init__(
        self,
        city: list[SimGateway],
        *,
        seed: int,
        start_ms: int,
        interval_ms: int,
        rate: float,
        area: Area = CHICAGO_AREA,
    ) -> None:
        self.city, self.seed, self.rate = city, seed, rate
        self.start_ms, self.interval_ms = start_ms, interval_ms
        self.ticks_per_epoch = max(1, round(_EPOCH_S * 1000 / interval_ms))
        self.center = ((area.south + area.north) / 2, (area.west + area.east) / 2)
        self._busy: dict[str, list[tuple[int, int]]] = {}  # device or gateway -> tick spans

    def epoch(self, e: int, n_ticks: int | None = None) -> list[Fault]:
        """Faults of epoch ``e`` (ticks ``e * ticks_per_epoch`` onwards); ``n_ticks``
        shortens the last epoch to the run's end."""
        if self.rate <= 0:
            return []
        size = self.ticks_per_epoch if n_ticks is None else min(n_ticks, self.ticks_per_epoch)
        if size <= 0:
            return []
        first = e * self.ticks_per_epoch
        rng = np.random.default_rng([self.seed, 0xFA17, e])
        times = (self.start_ms + (first + np.arange(size)) * self.interval_ms) / 1000
        elevation = sun_elevation(times, *self.center)
        masks = {"night": elevation < _NIGHT_DEG, "day": elevation > _DAY_DEG}
        bad = {k: np.r_[0, np.cumsum(~m)] for k, m in masks.items()}
        days = size * self.interval_ms / 1000 / _EPOCH_S
        faults: list[Fault] = []
        offline: dict[str, list[tuple[int, int]]] = {}
        for g in self.city:
            for _ in range(int(rng.poisson(self.rate * days))):
                kind = str(rng.choice(GATEWAY_FAULTS))
                span = self._place(rng, kind, g.gateway_id, first, size, bad, [])
                if span is None:
                    continue
                if kind == "gateway_offline":
                    offline.setdefault(g.gateway_id, []).append(span)
                faults.append(self._fault(rng, kind, g.gateway_id, None, (), span))
        devices = [(g, d) for g in self.city for d in g.devices]
        counts = rng.poisson(self.rate * days, len(devices))
        for j in np.flatnonzero(counts):
            g, d = devices[j]
            for _ in range(int(counts[j])):
                kind = str(rng.choice(DEVICE_FAULTS[d.kind]))
                avoid = offline.get(g.gateway_id, [])
                span = self._place(rng, kind, d.device_id, first, size, bad, avoid)
                if span is None:
                    continue
                if kind in LAMP_METRICS:
                    metrics = LAMP_METRICS[kind]
                elif kind in ("dropout", "dead_detector"):
                    metrics = ()
                else:
                    metrics = (str(rng.choice(METRICS[d.kind])),)
                faults.append(self._fault(rng, kind, g.gateway_id, d.device_id, metrics, span))
        faults.sort(key=lambda f: (f.start, f.gateway_id, f.device_id or "", f.fault))
        return faults

    def _place(
        self,
        rng: np.random.Generator,
        kind: str,
        key: str,
        first: int,
        size: int,
        bad: dict[str, npt.NDArray[np.int64]],
        avoid: list[tuple[int, int]],
    ) -> tuple[int, int] | None:
        spec = SPECS[kind]
        if spec.max_ticks is not None:
            ticks = int(rng.integers(spec.min_ticks, spec.max_ticks + 1))
        else:
            seconds = math.exp(rng.uniform(math.log(max(spec.min_s, 1)), math.log(spec.max_s)))
            ticks = max(spec.min_ticks, round(seconds * 1000 / self.interval_ms))
        ticks = min(ticks, size)
        if ticks < spec.min_ticks:
            return None
        if spec.sun is None:
            candidates = np.arange(size - ticks + 1)
        else:
            c = bad[spec.sun]
            candidates = np.flatnonzero(c[ticks:] - c[: len(c) - ticks] == 0)
        if len(candidates) == 0:
            return None
        gap = max(1, math.ceil(_GAP_S * 1000 / self.interval_ms))
        busy = self._busy.setdefault(key, [])
        for _ in range(8):
            a = first + int(rng.choice(candidates))
            b = a + ticks
            clash = any(a < y + gap and x < b + gap for x, y in busy)
            if not clash and not any(a < y + 1 and x < b + 1 for x, y in avoid):
                busy.append((a, b))
                if len(busy) > 16:
                    busy.pop(0)
                return a, b
        return None

    def _fault(
        self,
        rng: np.random.Generator,
        kind: str,
        gateway_id: str,
        device_id: str | None,
        metrics: tuple[str, ...],
        span: tuple[int, int],
    ) -> Fault:
        start = self.start_ms + span[0] * self.interval_ms
        end = self.start_ms + span[1] * self.interval_ms
        params = draw_params(rng, kind, metrics)
        return Fault(kind, gateway_id, device_id, metrics, _at(start), _at(end), params)


def draw_params(rng: np.random.Generator, kind: str, metrics: tuple[str, ...]) -> dict[str, float]:
    """A fault's magnitudes."""
    metric = metrics[0] if metrics else ""
    sign = float(rng.choice([-1.0, 1.0]))
    if kind == "spike":
        return {"height": SPIKE.get(metric, 10.0) * rng.uniform(0.8, 1.5), "sign": sign}
    if kind == "drift":
        up = metric in ("pm2_5_ugm3", "pm10_ugm3", "no2_ppb", "o3_ppb", "noise_dba")
        return {"total": DRIFT.get(metric, 5.0) * rng.uniform(0.6, 1.5) * (1 if up else sign)}
    if kind == "out_of_range":
        return {"value": float(rng.choice(GARBAGE))}
    if kind == "flicker":
        return {"phase": float(rng.integers(0, 2))}
    if kind == "power_out_of_band":
        high = rng.random() < 0.6
        return {"factor": rng.uniform(1.5, 2.0) if high else rng.uniform(0.35, 0.6)}
    if kind == "incident":
        return {"speed": rng.uniform(5, 15), "occupancy": rng.uniform(55, 85)}
    if kind == "late_delivery":
        return {"delay_s": float(rng.uniform(60, 900))}
    if kind == "out_of_order":
        return {"block": float(rng.integers(2, 5))}
    if kind == "duplicate":
        return {"resend_ticks": float(rng.integers(0, 4))}
    if kind == "clock_skew":
        return {"skew_s": sign * rng.uniform(120, 3600)}
    return {}


@dataclass(slots=True)
class Active:
    """A fault while it is injected: its tick span and what it needs to remember."""

    fault: Fault
    first: int
    end: int
    params: dict[str, float]
    kind: Kind | None = None
    row: int = -1
    columns: tuple[int, ...] = ()
    held: tuple[float, ...] = ()


def inject(
    a: Active, tick: int, arrays: Mapping[Kind, F64], dropped: set[tuple[Kind, int]]
) -> None:
    """Corrupt the healthy readings of ``a``'s device at ``tick`` (arrays unrounded)."""
    assert a.kind is not None
    x = arrays[a.kind]
    r, f, p = a.row, a.fault.fault, a.params
    if f == "lamp_out" or (f == "flicker" and (tick - a.first + p["phase"]) % 2 == 0):
        x[r, 0] = STANDBY_W  # the driver is alive, the lamp is not
        x[r, 2] = 0.0
        x[r, 5] = current_a(STANDBY_W, x[r, 4], False)
    elif f == "day_burner":
        rating = p["rating"]
        x[r, 0], x[r, 2], x[r, 3] = rating * (1 + 0.01 * math.sin(tick)), 1.0, 100.0
        x[r, 5] = current_a(x[r, 0], x[r, 4], True)
    elif f == "power_out_of_band":
        x[r, 0] *= p["factor"]
        x[r, 5] = current_a(x[r, 0], x[r, 4], True)
    elif f == "stuck":
        x[r, a.columns[0]] = a.held[0]
    elif f == "drift":
        k = tick - a.first + 1
        c = a.columns[0]
        x[r, c] = _clip(a.fault.metrics[0], x[r, c] + p["total"] * k / (a.end - a.first))
    elif f == "spike":
        c = a.columns[0]
        name = a.fault.metrics[0]
        meta = BY_NAME[name]
        up = p["sign"] > 0 if name in ("temperature_c", "pressure_hpa") else True
        if name == "humidity_pct":
            up = x[r, c] < 50
        x[r, c] = _clip(name, x[r, c] + (p["height"] if up else -p["height"]))
        if meta.low >= 0 and x[r, c] == meta.low:
            x[r, c] = meta.low + p["height"]
    elif f == "out_of_range":
        x[r, a.columns[0]] = p["value"]
    elif f == "incident":
        x[r, 0] = p["speed"] * (1 + 0.05 * math.sin(tick))
        x[r, 1] = round(x[r, 1] * 0.3)
        x[r, 2] = p["occupancy"] * (1 + 0.03 * math.cos(tick))
    elif f == "dead_detector":
        x[r, :] = 0.0
    elif f == "dropout":
        dropped.add((a.kind, r))


def _clip(metric: str, value: float) -> float:
    m = BY_NAME[metric]
    return min(m.high, max(m.low, value))
