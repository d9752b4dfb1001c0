"""A small in-process fault injection, until the simulators' generator lands (issue 3).

Healthy readings come from ``simulators.models`` (the device models the live simulator
publishes); faults are written over them and recorded as ground truth in the simulators'
format: ``{"fault", "gateway_id", "device_id" (None for gateway-wide), "metrics", "start",
"end"}`` with RFC 3339 event times. Values outside a metric's range are returned apart,
as the ingester dead-letters them. Deterministic for a seed; needs no broker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from devices.catalog import BY_NAME, Kind
from simulators.city import SimDevice, build_city
from simulators.models import MODELS, DeviceState

FAULTS = (
    "lamp_out", "day_burner", "flicker", "power_out_of_band", "stuck", "drift", "spike",
    "dropout", "out_of_range", "incident", "dead_detector", "gateway_offline",
)  # fmt: skip
START = datetime(2025, 11, 17, 6, tzinfo=UTC)  # a Monday, midnight in the city


@dataclass(slots=True)
class Stream:
    """Readings as value columns in event-time order, plus what was injected."""

    time_us: npt.NDArray[np.int64]
    device: npt.NDArray[np.int32]
    gateway: npt.NDArray[np.int32]
    metric: npt.NDArray[np.int16]
    value: npt.NDArray[np.float64]
    reading: npt.NDArray[np.int32]
    device_ids: list[str]
    gateway_ids: list[str]
    truth: list[dict[str, Any]] = field(default_factory=list)


def _rfc3339(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


class _City:
    def __init__(self, seed: int, days: float, interval_s: int, devices: tuple[int, int, int]):
        self.gateways = build_city(
            seed=seed, streetlights=devices[0], environment=devices[1], traffic=devices[2],
            gateways=3,
        )  # fmt: skip
        self.rng = np.random.default_rng(seed)
        self.steps = int(days * 86_400 / interval_s)
        self.interval = interval_s
        self.devices = [(g.gateway_id, d) for g in self.gateways for d in g.devices]
        self.rows: dict[str, list[dict[str, float]]] = {}
        for _, d in self.devices:
            state = DeviceState()
            model = MODELS[d.kind]
            self.rows[d.device_id] = [
                model(d, self.when(i), state, self.rng, interval_s) for i in range(self.steps)
            ]
        self.keep = {d.device_id: np.ones(self.steps, dtype=np.bool_) for _, d in self.devices}
        self.truth: list[dict[str, Any]] = []

    def when(self, i: int) -> datetime:
        return START + timedelta(seconds=i * self.interval)

    def record(self, fault: str, gw: str, dev: SimDevice | None, metrics: list[str], i: int,
               n: int) -> None:  # fmt: skip
        start, end = self.when(i), self.when(i + n - 1)
        self.truth.append({
            "fault": fault, "gateway_id": gw, "device_id": dev and dev.device_id,
            "metrics": metrics, "start": _rfc3339(start), "end": _rfc3339(end),
        })  # fmt: skip


def _pick(city: _City, kind: Kind, used: set[str]) -> tuple[str, SimDevice]:
    options = [(g, d) for g, d in city.devices if d.kind == kind and d.device_id not in used]
    g, d = options[int(city.rng.integers(len(options)))]
    used.add(d.device_id)
    return g, d


def _when(city: _City, rows: list[dict[str, float]], n: int, test: Any, warm: int) -> int:
    """A start after the warm-up days where ``test`` holds for the fault's whole length."""
    for _ in range(2_000):
        i = int(city.rng.integers(warm, city.steps - n - 1))
        if all(test(rows[j]) for j in range(i, i + n)):
            return i
    raise RuntimeError("no time found for a fault")


def generate(
    seed: int, *, days: float = 5.0, interval_s: int = 60, warmup_days: float = 3.0,
    devices: tuple[int, int, int] = (30, 6, 6), faults: tuple[str, ...] = FAULTS,
) -> Stream:  # fmt: skip
    """A city's readings over ``days`` with one of each fault after ``warmup_days``."""
    city = _City(seed, days, interval_s, devices)
    warm, per_h = int(warmup_days * 86_400 / interval_s), 3_600 // interval_s
    used: set[str] = set()
    night = lambda r: r["lamp_on"] == 1.0  # noqa: E731
    day = lambda r: r["ambient_lux"] > 5_000  # noqa: E731
    busy = lambda r: r["occupancy_pct"] < 30 and r["speed_kmh"] > 25  # noqa: E731
    for fault in faults:
        _inject(city, fault, used, warm, per_h, night, day, busy)
    return _columns(city)


def _inject(city: _City, fault: str, used: set[str], warm: int, per_h: int, night: Any,
            day: Any, busy: Any) -> None:  # fmt: skip
    rng = city.rng
    if fault in ("lamp_out", "day_burner", "flicker", "power_out_of_band"):
        g, d = _pick(city, Kind.STREETLIGHT, used)
        rows = city.rows[d.device_id]
        n = 2 * per_h if fault != "flicker" else per_h
        i = _when(city, rows, n, day if fault == "day_burner" else night, warm)
        for j in range(i, i + n):
            r = rows[j]
            if fault == "lamp_out" or (fault == "flicker" and (j - i) % 2):
                r.update(power_w=0.4, lamp_on=0.0, current_a=0.0033)
            elif fault == "day_burner":
                r.update(power_w=round(d.rating_w * (1 + rng.normal(0, 0.01)), 2), lamp_on=1.0,
                         dim_pct=100.0)  # fmt: skip
            elif fault == "power_out_of_band":
                r["power_w"] = round(r["power_w"] * 1.6, 2)
        city.record(fault, g, d, ["power_w"], i, n)
        return
    if fault in ("stuck", "drift", "spike", "out_of_range"):
        kind = Kind.ENVIRONMENT if fault != "spike" or rng.random() < 0.5 else Kind.TRAFFIC
        g, d = _pick(city, kind, used)
        rows = city.rows[d.device_id]
        name = {
            "stuck": "humidity_pct", "drift": "temperature_c", "out_of_range": "noise_dba",
            "spike": "noise_dba" if kind == Kind.ENVIRONMENT else "speed_kmh",
        }[fault]  # fmt: skip
        n = {"stuck": 3 * per_h, "drift": 12 * per_h, "spike": 3, "out_of_range": 3}[fault]
        i = _when(city, rows, n, lambda r: True, city.steps // 2)
        first = rows[i][name]
        for j in range(i, i + n):
            r = rows[j]
            if fault == "stuck":
                r[name] = first
            elif fault == "drift":
                r[name] = round(r[name] + 5.0 * (j - i) / n, 2)
            elif fault == "spike":
                r[name] = round(r[name] * 2.5 + 20, 1)
            else:
                r[name] = BY_NAME[name].high * 1.5
        city.record(fault, g, d, [name], i, n)
        return
    if fault in ("incident", "dead_detector"):
        g, d = _pick(city, Kind.TRAFFIC, used)
        rows = city.rows[d.device_id]
        n = per_h if fault == "incident" else 2 * per_h
        i = _when(city, rows, n, busy if fault == "incident" else lambda r: True, warm)
        for j in range(i, i + n):
            if fault == "incident":
                rows[j].update(speed_kmh=round(6 + rng.normal(0, 1), 1), occupancy_pct=80.0)
            else:
                rows[j].update(speed_kmh=0.0, volume_veh=0.0, occupancy_pct=0.0)
        metrics = ["speed_kmh", "occupancy_pct"] if fault == "incident" else []
        city.record(fault, g, d, metrics, i, n)
        return
    if fault == "dropout":
        g, d = _pick(city, Kind(rng.choice([k.value for k in Kind])), used)
        n = per_h
        i = int(rng.integers(warm, city.steps - n - 1))
        city.keep[d.device_id][i : i + n] = False
        city.record(fault, g, d, [], i, n)
        return
    if fault == "gateway_offline":
        gw = city.gateways[int(rng.integers(len(city.gateways)))]
        n = per_h // 2
        i = int(rng.integers(warm, city.steps - n - 1))
        for d in gw.devices:
            city.keep[d.device_id][i : i + n] = False
        city.record(fault, gw.gateway_id, None, [], i, n)
        return
    raise ValueError(f"unknown fault {fault!r}")


def _columns(city: _City) -> Stream:
    gateway_ids = [g.gateway_id for g in city.gateways]
    device_ids = [d.device_id for _, d in city.devices]
    cols: dict[str, list[Any]] = {k: [] for k in ("t", "d", "g", "m", "v", "r")}
    t0 = int(START.timestamp()) * 1_000_000
    reading = 0
    for i in range(city.steps):
        t = t0 + i * city.interval * 1_000_000
        for key, (g, d) in enumerate(city.devices, start=1):
            if not city.keep[d.device_id][i]:
                continue
            for name, x in city.rows[d.device_id][i].items():
                cols["t"].append(t)
                cols["d"].append(key)
                cols["g"].append(gateway_ids.index(g) + 1)
                cols["m"].append(BY_NAME[name].id)
                cols["v"].append(x)
                cols["r"].append(reading)
            reading += 1
    return Stream(
        np.array(cols["t"], dtype=np.int64), np.array(cols["d"], dtype=np.int32),
        np.array(cols["g"], dtype=np.int32), np.array(cols["m"], dtype=np.int16),
        np.array(cols["v"], dtype=np.float64), np.array(cols["r"], dtype=np.int32),
        device_ids, gateway_ids, city.truth,
    )  # fmt: skip
