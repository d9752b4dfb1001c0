"""The city's telemetry as a pure, deterministic stream: no broker, no clock.

``CityGenerator`` yields, in the order the gateways would publish them, each gateway's
telemetry messages (gateway id, seq, sent_at, contract ``Reading``s) and its status
changes, with the injected faults' effects — device faults in the values, gateway faults
in what is sent when — and keeps the ground truth (``faults``). The MQTT simulation
(``simulators.run``) publishes exactly this stream; tests and the detectors' quality
measurements consume it in-process. docs/simulators.md documents it.
"""

from __future__ import annotations

import dataclasses
import gc
import heapq
import itertools
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from devices.catalog import Kind
from devices.contract import Reading, Telemetry
from simulators.city import CHICAGO_AREA, Area, SimDevice, SimGateway
from simulators.faults import Active, Fault, Planner, draw_params, inject
from simulators.physics import F64, METRICS, CityPhysics, Fleet, round_columns

_KINDS = (Kind.STREETLIGHT, Kind.ENVIRONMENT, Kind.TRAFFIC)


@dataclass(frozen=True, slots=True)
class Message:
    """One telemetry message as its gateway publishes it."""

    gateway_id: str
    seq: int
    sent_at: int
    """Epoch ms, by the gateway's clock (skewed under ``clock_skew``)."""
    readings: list[Reading]
    published_at: int
    """Epoch ms of true simulated time at which the gateway publishes it."""
    values: int
    """How many values the readings carry."""
    taken_at: int
    """Epoch ms of true time at which the readings were taken: their ``ts``, but for a
    gateway with a skewed clock."""

    def telemetry(self) -> Telemetry:
        return Telemetry(self.gateway_id, self.seq, self.readings, self.sent_at)


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A gateway losing (``online`` False: the broker publishes its will) or regaining
    its connection, at ``at`` (epoch ms, true time)."""

    gateway_id: str
    at: int
    online: bool


Event = Message | StatusChange


def _ms(dt: datetime) -> int:
    if dt.tzinfo is None:
        raise ValueError(f"{dt} has no time zone")
    return round(dt.timestamp() * 1000)


class CityGenerator:
    """Readings of every device of ``city`` every ``interval_s`` from ``start`` until
    ``end`` (exclusive; ``None``: forever), faults at ``fault_rate`` per device per day
    and per gateway per day, plus any ``faults`` given. Same arguments, same stream.

    ``first_seq`` numbers each gateway's first message (default: ``start`` in epoch
    ms, so that a later run continues above an earlier one, as the contract asks).
    """

    def __init__(
        self,
        city: list[SimGateway],
        *,
        start: datetime,
        end: datetime | None = None,
        interval_s: float = 10.0,
        seed: int = 1,
        fault_rate: float = 0.0,
        faults: Iterable[Fault] = (),
        area: Area = CHICAGO_AREA,
        first_seq: int | None = None,
    ) -> None:
        self.city = city
        self.seed = seed
        self.interval_ms = max(1, round(interval_s * 1000))
        self.start_ms = _ms(start)
        self.end_ms = None if end is None else _ms(end)
        self.n_ticks = (
            None
            if self.end_ms is None
            else max(0, math.ceil((self.end_ms - self.start_ms) / self.interval_ms))
        )
        self.first_seq = self.start_ms if first_seq is None else first_seq
        self._slices: list[list[tuple[Kind, int, int]]] = []
        counts = {k: 0 for k in _KINDS}
        devices_by_kind: dict[Kind, list[SimDevice]] = {k: [] for k in _KINDS}
        for g in city:
            mine = []
            for k in _KINDS:
                ds = [d for d in g.devices if d.kind is k]
                devices_by_kind[k].extend(ds)
                if ds:
                    mine.append((k, counts[k], counts[k] + len(ds)))
                counts[k] += len(ds)
            self._slices.append(mine)
        self.fleets = {k: Fleet(k, ds, seed, area) for k, ds in devices_by_kind.items() if ds}
        self._where = {
            did: (k, i) for k, f in self.fleets.items() for i, did in enumerate(f.device_ids)
        }
        self._gw_index = {g.gateway_id: i for i, g in enumerate(city)}
        self.physics = CityPhysics(self.fleets, seed=seed, area=area)
        self.planner = Planner(
            city,
            seed=seed,
            start_ms=self.start_ms,
            interval_ms=self.interval_ms,
            rate=fault_rate,
            area=area,
        )
        self.faults: list[Fault] = []
        """Every fault planned so far, by start: all of them when ``end`` is set."""
        self._pending: list[tuple[int, int, Fault]] = []  # (first tick, order, fault) heap
        self._order = itertools.count()
        self._planned_epochs = 0
        for f in faults:
            self._add(f)
        if self.n_ticks is not None:
            self._plan_until(self.n_ticks - 1)
        self.faults.sort(key=lambda f: (f.start, f.gateway_id, f.device_id or "", f.fault))
        self._ended: list[Fault] = []
        self._active: list[Active] = []
        self.tick = 0
        """The next tick to generate."""

    # -- faults -----------------------------------------------------------------------

    def _tick_of(self, ms: int) -> int:
        return max(0, -(-(ms - self.start_ms) // self.interval_ms))

    def _add(self, f: Fault) -> None:
        if f.gateway_id not in self._gw_index:
            raise ValueError(f"{f.fault}: no gateway {f.gateway_id!r} in the city")
        if f.device_id is not None and f.device_id not in self._where:
            raise ValueError(f"{f.fault}: no device {f.device_id!r} in the city")
        self.faults.append(f)
        heapq.heappush(self._pending, (self._tick_of(f.start_ms), next(self._order), f))

    def _plan_until(self, tick: int) -> None:
        epoch_ticks = self.planner.ticks_per_epoch
        while self._planned_epochs * epoch_ticks <= tick:
            e = self._planned_epochs
            remaining = None if self.n_ticks is None else self.n_ticks - e * epoch_ticks
            for f in self.planner.epoch(e, remaining):
                self._add(f)
            self._planned_epochs += 1

    def ended_faults(self) -> list[Fault]:
        """Faults whose interval the stream has passed since the last call (for writing
        the ground truth as a long run goes)."""
        out, self._ended = self._ended, []
        return out

    def truncated_faults(self) -> list[Fault]:
        """Faults under way at the current tick, cut short there (a run stopped early)."""
        now = self.start_ms + self.tick * self.interval_ms
        return [
            Fault(
                a.fault.fault,
                a.fault.gateway_id,
                a.fault.device_id,
                a.fault.metrics,
                a.fault.start,
                datetime.fromtimestamp(now / 1000, UTC),
                a.fault.params,
            )
            for a in self._active
            if a.first < self.tick
        ]

    # -- the stream ---------------------------------------------------------------------

    def messages(self) -> Iterator[Message]:
        """The telemetry messages only, in publishing order."""
        for e in self.events():
            if isinstance(e, Message):
                yield e

    def events(self) -> Iterator[Event]:
        """Messages and status changes in the order they happen (by ``published_at``/``at``;
        at one instant gateways in city order, a gateway's messages by seq)."""
        heap: list[tuple[int, int, int, int, int, Event]] = []
        seqs = [self.first_seq] * len(self.city)
        gw_fault: list[Active | None] = [None] * len(self.city)
        last: dict[Kind, F64] = {}
        counter = itertools.count()
        dt_s = self.interval_ms / 1000
        while self.n_ticks is None or self.tick < self.n_ticks:
            i = self.tick
            t_ms = self.start_ms + i * self.interval_ms
            self._plan_until(i)
            # A tick allocates a reading and a dict per device and nothing cyclic: the
            # cyclic collector, run every 700 allocations, would take a third of the time.
            collecting = gc.isenabled()
            gc.disable()
            try:
                arrays = self.physics.healthy(t_ms / 1000, dt_s, i)
                # faults that end, then those that start
                still = []
                for a in self._active:
                    if a.end <= i:
                        self._ended.append(a.fault)
                        if a.kind is None:
                            gw_fault[self._gw_index[a.fault.gateway_id]] = None
                    else:
                        still.append(a)
                self._active = still
                while self._pending and self._pending[0][0] <= i:
                    _, order, f = heapq.heappop(self._pending)
                    a = self._activate(f, order, last, arrays)
                    if a.end <= i:  # shorter than a tick, or entirely before the start
                        self._ended.append(f)
                        continue
                    self._active.append(a)
                    if a.kind is None:
                        gw = self._gw_index[f.gateway_id]
                        gw_fault[gw] = a
                        if f.fault in ("gateway_offline", "backlog_replay"):
                            end_ms = self.start_ms + a.end * self.interval_ms
                            for at, online in ((t_ms, False), (end_ms, True)):
                                e = StatusChange(f.gateway_id, at, online)
                                heapq.heappush(heap, (at, 0, gw, -1, next(counter), e))
                dropped: set[tuple[Kind, int]] = set()
                for a in self._active:
                    if a.kind is not None:
                        inject(a, i, arrays, dropped)
                if Kind.STREETLIGHT in arrays:
                    self.physics.accumulate_energy(arrays[Kind.STREETLIGHT], dt_s)
                for kind, x in arrays.items():
                    round_columns(kind, x)
                last = arrays
                rows = {k: x.tolist() for k, x in arrays.items()}
                for gw, g in enumerate(self.city):
                    ga = gw_fault[gw]
                    gk = ga.fault.fault if ga is not None else None
                    if gk == "gateway_offline":
                        continue  # powered off: no readings, no message
                    skew = round(ga.params["skew_s"] * 1000) if gk == "clock_skew" and ga else 0
                    ts = t_ms + skew
                    readings: list[Reading] = []
                    values = 0
                    for kind, lo, hi in self._slices[gw]:
                        names = METRICS[kind]
                        ids = self.fleets[kind].device_ids[lo:hi]
                        rk = rows[kind][lo:hi]
                        before = len(readings)
                        if dropped:
                            readings.extend(
                                Reading(did, ts, dict(zip(names, row, strict=False)))
                                for j, (did, row) in enumerate(zip(ids, rk, strict=True), lo)
                                if (kind, j) not in dropped
                            )
                        else:
                            readings.extend(
                                [
                                    Reading(did, ts, dict(zip(names, row, strict=False)))
                                    for did, row in zip(ids, rk, strict=True)
                                ]
                            )
                        values += (len(readings) - before) * len(names)
                    seq = seqs[gw]
                    seqs[gw] += 1
                    due = t_ms
                    if ga is not None and gk == "backlog_replay":
                        due = self.start_ms + ga.end * self.interval_ms
                    elif ga is not None and gk == "late_delivery":
                        due = t_ms + round(ga.params["delay_s"] * 1000)
                    elif ga is not None and gk == "out_of_order":
                        block = int(ga.params["block"])
                        k = i - ga.first
                        b0 = ga.first + (k // block) * block
                        b1 = min(b0 + block, ga.end) - 1
                        due = self.start_ms + b1 * self.interval_ms + (b1 - i)
                    m = Message(g.gateway_id, seq, due + skew, readings, due, values, t_ms)
                    heapq.heappush(heap, (due, 1, gw, seq, next(counter), m))
                    if ga is not None and gk == "duplicate":
                        again = t_ms + int(ga.params["resend_ticks"]) * self.interval_ms + 1
                        copy = dataclasses.replace(m, published_at=again)  # same payload
                        heapq.heappush(heap, (again, 1, gw, seq, next(counter), copy))
                self.tick += 1
            finally:
                if collecting:
                    gc.enable()
            horizon = t_ms + self.interval_ms
            while heap and heap[0][0] < horizon:
                yield heapq.heappop(heap)[-1]
        for a in self._active:
            self._ended.append(a.fault)
        self._active = []
        while heap:
            yield heapq.heappop(heap)[-1]

    def _activate(
        self,
        f: Fault,
        order: int,
        last: dict[Kind, F64],
        arrays: dict[Kind, F64],
    ) -> Active:
        params = dict(f.params)
        if not params:
            params = draw_params(
                np.random.default_rng([self.seed, 0xDA7A, order]),
                f.fault,
                f.metrics,
            )
        a = Active(f, self._tick_of(f.start_ms), self._tick_of(f.end_ms), params)
        if f.device_id is None:
            return a
        kind, row = self._where[f.device_id]
        a.kind, a.row = kind, row
        names = METRICS[kind]
        a.columns = tuple(names.index(m) for m in f.metrics) if f.metrics else ()
        if f.fault == "day_burner":
            a.params["rating"] = float(self.fleets[kind].rating[row])
        if f.fault == "stuck":
            source = last.get(kind, arrays[kind])
            value = float(source[row, a.columns[0]])
            a.held = (value,)
        return a


def generate(
    city: list[SimGateway],
    *,
    start: datetime,
    end: datetime,
    interval_s: float = 10.0,
    seed: int = 1,
    fault_rate: float = 0.0,
    faults: Iterable[Fault] = (),
    area: Area = CHICAGO_AREA,
) -> tuple[Iterator[Message], list[Fault]]:
    """The messages of ``[start, end)`` in publishing order, and the ground truth."""
    g = CityGenerator(
        city,
        start=start,
        end=end,
        interval_s=interval_s,
        seed=seed,
        fault_rate=fault_rate,
        faults=faults,
        area=area,
    )
    return g.messages(), list(g.faults)
