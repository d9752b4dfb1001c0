"""Detection quality against the simulators' injected faults: precision and recall per kind.

    python -m bench.quality --seed 101 --seed 102

The simulators' in-process generator (``simulators.generator``, no broker) makes a city's
messages with faults and the ground truth. They go through the same ``Detection`` the
live ingester uses, as the ingester would hand them over: in slices of ``--slice-s`` of
publication time, each message stored once (a duplicate contributes nothing), values
outside their metric's range apart (dead-lettered, then scored by the range check),
readings stamped more than 5 min ahead of arrival dropped (dead-lettered as in the future),
and the silence check after each slice. Scoring is event-level:

- a fault is *found* when an episode of its device (of its gateway or any of its
  devices, for a gateway-wide fault) overlaps its interval, stretched by ``--grace-s``
  at the end (an episode is reported when its evidence is in: a lamp is out after 15 min);
  an episode about one metric must be about one of the fault's metrics, where it names any;
- an episode is a *false positive* when it overlaps no fault of its device or gateway
  (whatever the metric: a lamp that fails changes its current as well as its power).
  Per kind, precision counts the episodes of the detector meant for that kind.

Delivery faults (duplicate, late_delivery, out_of_order, backlog_replay, clock_skew) are
the ingester's job, not anomalies: their values are stored once, in their event-time
place, and they are not in the recall table. Silence episodes (dropout, gateway_silent)
during a backlog_replay or late_delivery of their gateway are true: nothing arrived from
it. Any other episode they cause counts as a false positive. Faults that start within the
warm-up (``--warmup-days``), and episodes that start in it, are not scored.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from devices.catalog import BY_NAME, METRICS
from devices.columns import EpisodeChange, ValueColumns
from devices.tables import HIGH, LOW
from ingest.detect import Detection
from simulators.city import build_city
from simulators.faults import Fault
from simulators.generator import CityGenerator, Message

DETECTOR_FAULT = {
    "lamp_out": "lamp_out", "day_burner": "day_burner", "flicker": "flicker",
    "power_out_of_band": "power_out_of_band", "flatline": "stuck", "drift": "drift",
    "deviation": "spike", "range": "out_of_range", "incident": "incident",
    "dead_detector": "dead_detector", "dropout": "dropout", "gateway_silent": "gateway_offline",
}  # fmt: skip
"""The fault kind each detector is meant for (for per-kind precision)."""
DELIVERY = ("backlog_replay", "late_delivery", "out_of_order", "duplicate", "clock_skew")
SILENT_ON_THE_WIRE = ("backlog_replay", "late_delivery")
START = datetime(2025, 11, 17, 6, tzinfo=UTC)  # a Monday, midnight in the city
FUTURE_US = 300_000_000  # the ingester's default future tolerance


@dataclass(slots=True)
class Episode:
    detector: str
    device: int | None
    metric: int | None
    gateway: int | None
    start: int
    end: int


@dataclass(slots=True)
class City:
    """Keys as the registry would give them: devices and gateways numbered from 1."""

    device_key: dict[str, int]
    gateway_key: dict[str, int]
    device_gateway: dict[int, int]


def city_of(gateways: Iterable[Any]) -> City:
    city = City({}, {}, {})
    for g in gateways:
        gk = city.gateway_key.setdefault(g.gateway_id, len(city.gateway_key) + 1)
        for d in g.devices:
            dk = city.device_key.setdefault(d.device_id, len(city.device_key) + 1)
            city.device_gateway[dk] = gk
    return city


def _slices(messages: Iterable[Message], slice_ms: int) -> Iterator[tuple[int, list[Message]]]:
    """Messages by slice of publication time: (the slice's end, its messages)."""
    batch: list[Message] = []
    end = None
    for m in messages:
        if end is None:
            end = (m.published_at // slice_ms + 1) * slice_ms
        while m.published_at >= end:
            yield end, batch
            batch, end = [], end + slice_ms
        batch.append(m)
    if end is not None:
        yield end, batch


def _columns(batch: list[Message], city: City, seen: set[tuple[str, int]]) -> dict[str, Any]:
    cols: dict[str, list[Any]] = {k: [] for k in ("t", "d", "g", "m", "v", "r", "a")}
    reading = 0
    for msg in batch:
        if (msg.gateway_id, msg.seq) in seen:
            continue  # stored once: the duplicate contributes nothing
        seen.add((msg.gateway_id, msg.seq))
        g, arrived = city.gateway_key[msg.gateway_id], msg.published_at * 1000
        for r in msg.readings:
            t = r.ts * 1000
            if t > arrived + FUTURE_US:
                continue  # dead-lettered: time in the future
            d = city.device_key[r.device_id]
            for name, x in r.metrics.items():
                cols["t"].append(t)
                cols["d"].append(d)
                cols["g"].append(g)
                cols["m"].append(BY_NAME[name].id)
                cols["v"].append(x)
                cols["r"].append(reading)
                cols["a"].append(arrived)
            reading += 1
    return cols


def run(
    messages: Iterable[Message],
    city: City,
    *,
    slice_s: float = 60,
    timezone: str = "America/Chicago",
) -> list[Episode]:
    """Every episode Detection opens on the messages (still-open ones end at the last)."""
    detection = Detection(timezone=timezone)
    seen: set[tuple[str, int]] = set()
    changes: list[EpisodeChange] = []
    end_us = 0
    for end_ms, batch in _slices(messages, int(slice_s * 1000)):
        c = _columns(batch, city, seen)
        if c["t"]:
            v = ValueColumns(
                np.array(c["t"], np.int64), np.array(c["d"], np.int32),
                np.array(c["m"], np.int16), np.array(c["v"], np.float64),
                np.array(c["g"], np.int32), np.array(c["r"], np.int32),
            )  # fmt: skip
            gateway, arrived = np.array(c["g"], np.int32), np.array(c["a"], np.int64)
            out = (v.value < LOW[v.metric]) | (v.value > HIGH[v.metric])
            changes += detection.observe(
                v.take(~out), gateway=gateway[~out], out_of_range=v.take(out),
                received=arrived[~out],
            )  # fmt: skip
        end_us = end_ms * 1000
        changes += detection.silence(end_us)
    return episodes_of(changes, end_us)


def episodes_of(changes: list[EpisodeChange], end: int) -> list[Episode]:
    open_: dict[tuple[Any, ...], Episode] = {}
    done: list[Episode] = []
    for c in changes:
        key = (c.detector, c.device, c.metric, c.gateway)
        if c.opened:
            open_[key] = Episode(c.detector, c.device, c.metric, c.gateway, c.start_us, end)
        elif key in open_:
            e = open_.pop(key)
            e.end = c.end_us
            done.append(e)
    return done + list(open_.values())


@dataclass(frozen=True, slots=True)
class _Truth:
    kind: str
    gateway: int
    device: int | None
    metrics: frozenset[int]
    start: int
    end: int


def _skewed(t: _Truth, faults: Iterable[Fault], city: City) -> _Truth:
    """A device fault under its gateway's clock skew is stored at skewed times: its
    interval is widened by the skew (the ground truth is in true time)."""
    skews = [f for f in faults if f.fault == "clock_skew" and t.device is not None]
    for f in skews:
        overlaps = f.start_ms * 1000 < t.end and t.start < f.end_ms * 1000
        if overlaps and city.gateway_key[f.gateway_id] == t.gateway:
            skew = int(abs(f.params.get("skew_s", 3600)) * 1e6)
            return _Truth(t.kind, t.gateway, t.device, t.metrics, t.start - skew, t.end + skew)
    return t


def missed(
    faults: list[Fault], episodes: list[Episode], city: City, scored_from_us: int
) -> list[Fault]:
    skews = [f for f in faults if f.fault == "clock_skew"]
    return [
        f
        for f in faults
        if f.start_ms * 1000 >= scored_from_us
        and f.fault not in DELIVERY
        and score([f, *skews], episodes, city)[f.fault]["found"] == 0
    ]


def _matches(e: Episode, f: _Truth, city: City, *, any_metric: bool = False) -> bool:
    if e.start > f.end or e.end < f.start:
        return False
    if f.kind in DELIVERY:  # only silence can be explained by a delivery fault
        silent = e.detector in ("dropout", "gateway_silent") and f.kind in SILENT_ON_THE_WIRE
        return silent and _gateway(e, city) == f.gateway
    if f.device is None:
        return _gateway(e, city) == f.gateway
    if e.device != f.device:
        return False
    return any_metric or e.metric is None or not f.metrics or e.metric in f.metrics


def _gateway(e: Episode, city: City) -> int | None:
    return e.gateway if e.device is None else city.device_gateway.get(e.device)


def score(
    faults: Iterable[Fault],
    episodes: list[Episode],
    city: City,
    *,
    grace_s: float = 900,
    scored_from_us: int = 0,
) -> dict[str, dict[str, float]]:
    """Per fault kind and overall: faults, found, recall, episodes, true, precision."""
    truth = [
        _Truth(
            f.fault,
            city.gateway_key[f.gateway_id],
            None if f.device_id is None else city.device_key[f.device_id],
            frozenset(BY_NAME[m].id for m in f.metrics),
            f.start_ms * 1000,
            f.end_ms * 1000 + int(grace_s * 1e6),
        )
        for f in faults
    ]
    truth = [_skewed(t, faults, city) for t in truth]
    episodes = [e for e in episodes if e.start >= scored_from_us]
    table: dict[str, dict[str, float]] = {}
    kinds = sorted(set(DETECTOR_FAULT.values()) | {t.kind for t in truth} - set(DELIVERY))
    for kind in kinds:
        mine = [t for t in truth if t.kind == kind and t.start >= scored_from_us]
        found = sum(any(_matches(e, t, city) for e in episodes) for t in mine)
        eps = [e for e in episodes if DETECTOR_FAULT.get(e.detector) == kind]
        true = sum(any(_matches(e, t, city, any_metric=True) for t in truth) for e in eps)
        table[kind] = {"faults": len(mine), "found": found, "episodes": len(eps), "true": true}
    table["overall"] = {
        k: sum(row[k] for row in table.values()) for k in ("faults", "found", "episodes", "true")
    }
    return table


def false_positives(
    faults: list[Fault], episodes: list[Episode], city: City, scored_from_us: int
) -> list[Episode]:
    return [
        e
        for e in episodes
        if e.start >= scored_from_us and score(faults, [e], city)["overall"]["true"] == 0
    ]


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def print_table(table: dict[str, dict[str, float]], title: str) -> None:
    print(title)
    head = ("kind", "faults", "found", "recall", "episodes", "true", "precision")
    print(f"{head[0]:<19}" + "".join(f"{h:>10}" for h in head[1:]))
    for kind, r in table.items():
        recall, precision = _ratio(r["found"], r["faults"]), _ratio(r["true"], r["episodes"])
        cells = (r["faults"], r["found"], f"{recall:.2f}", r["episodes"], r["true"])
        print(f"{kind:<19}" + "".join(f"{c:>10}" for c in cells) + f"{precision:>10.2f}")


def evaluate(
    seed: int,
    *,
    days: float,
    interval_s: float,
    fault_rate: float,
    city_size: tuple[int, int, int, int],
    warmup_days: float,
    faults: Iterable[Fault] = (),
) -> tuple[dict[str, dict[str, float]], list[Fault], list[Episode], City]:
    """One seed's city through Detection; the table, faults, episodes and keys.

    ``faults`` are injected on top of those ``fault_rate`` draws.
    """
    lights, env, roads, gateways = city_size
    gateways_ = build_city(
        seed=seed, streetlights=lights, environment=env, traffic=roads, gateways=gateways
    )
    city = city_of(gateways_)
    gen = CityGenerator(
        gateways_, start=START, end=START + timedelta(days=days), interval_s=interval_s,
        seed=seed, fault_rate=fault_rate, faults=faults,
    )  # fmt: skip
    faults = list(gen.faults)
    episodes = run(gen.messages(), city)
    scored_from = int((START + timedelta(days=warmup_days)).timestamp() * 1e6)
    return score(faults, episodes, city, scored_from_us=scored_from), faults, episodes, city


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seed", type=int, action="append", required=True)
    parser.add_argument("--days", type=float, default=5.0)
    parser.add_argument("--warmup-days", type=float, default=2.0)
    parser.add_argument("--interval-s", type=float, default=60.0)
    parser.add_argument("--fault-rate", type=float, default=0.3, help="per device per day")
    parser.add_argument("--city", default="60,24,24,4", help="streetlights,env,traffic,gateways")
    parser.add_argument("--show-false-positives", action="store_true")
    parser.add_argument("--show-missed", action="store_true")
    args = parser.parse_args(argv)
    size = tuple(int(x) for x in args.city.split(","))
    total: dict[str, dict[str, float]] = {}
    for seed in args.seed:
        table, faults, episodes, city = evaluate(
            seed, days=args.days, interval_s=args.interval_s, fault_rate=args.fault_rate,
            city_size=size, warmup_days=args.warmup_days,  # type: ignore[arg-type]
        )  # fmt: skip
        for kind, row in table.items():
            acc = total.setdefault(kind, dict.fromkeys(row, 0))
            for k, v in row.items():
                acc[k] += v
        scored_from = int((START + timedelta(days=args.warmup_days)).timestamp() * 1e6)
        if args.show_false_positives:
            names = {v: k for k, v in city.device_key.items()}
            for e in false_positives(faults, episodes, city, scored_from):
                when = datetime.fromtimestamp(e.start / 1e6, UTC).isoformat()
                minutes = (e.end - e.start) / 6e7
                who = names.get(e.device or -1, f"gateway {e.gateway}")
                metric = next((m.name for m in METRICS if m.id == e.metric), "-")
                print(f"  seed {seed} FP {e.detector} {who} {metric} {when} {minutes:.0f} min")
        if args.show_missed:
            for f in missed(faults, episodes, city, scored_from):
                print(f"  seed {seed} missed {f.to_json()} {dict(f.params)}")
    print_table(
        total,
        f"seeds {args.seed}: {args.days:g} days at {args.interval_s:g} s, city {args.city},"
        f" fault rate {args.fault_rate}/device/day, scored after {args.warmup_days:g} days",
    )


if __name__ == "__main__":
    main()
