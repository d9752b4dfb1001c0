"""Detection quality against injected faults: precision and recall per fault kind.

    python -m bench.quality --seed 11 --seed 12

The stream (bench/faults.py until the simulators' generator lands) goes through the same
``Detection`` the live ingester uses, in slices of ``--slice-s`` of event time, with the
dropout check after each slice. Event-level scoring:

- a fault is *found* when an episode of its device (of its gateway, for a gateway-wide
  fault) overlaps its interval [start, end + grace]; an episode about one metric must be
  about one of the fault's metrics, where the fault names any;
- an episode is a *false positive* when it overlaps no fault of its device or gateway
  (whatever its metric: a lamp that fails changes its current as well as its power).
  Per kind, precision counts the episodes of the detector meant for that kind.

Delivery faults (duplicate, late, out of order, backlog replay, clock skew) are not
anomalies: the ingester stores such values once, in their event-time place. They are
not scored here; an episode they cause counts as a false positive.
"""

from __future__ import annotations

import argparse
import itertools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from bench.faults import FAULTS, Stream, generate
from devices.catalog import BY_ID, METRICS
from ingest.detect import Detection
from storage.episodes import EpisodeChange
from storage.writer import ValueColumns

DETECTOR_FAULT = {
    "lamp_out": "lamp_out", "day_burner": "day_burner", "flicker": "flicker",
    "power_out_of_band": "power_out_of_band", "flatline": "stuck", "drift": "drift",
    "deviation": "spike", "range": "out_of_range", "incident": "incident",
    "dead_detector": "dead_detector", "dropout": "dropout", "gateway_silent": "gateway_offline",
}  # fmt: skip
_LOW = np.array([0.0] + [m.low for m in METRICS])
_HIGH = np.array([0.0] + [m.high for m in METRICS])


@dataclass(slots=True)
class Episode:
    detector: str
    device: int | None
    metric: int | None
    gateway: int | None
    start: int
    end: int


def run(
    stream: Stream, *, slice_s: float = 600, timezone: str = "America/Chicago"
) -> list[Episode]:
    """Every episode Detection opens on the stream (still-open ones end at its end)."""
    detection = Detection(timezone=timezone)
    outside = (stream.value < _LOW[stream.metric]) | (stream.value > _HIGH[stream.metric])
    step = int(slice_s * 1e6)
    t = stream.time_us
    edges = np.searchsorted(t, np.arange(t[0], t[-1] + step, step))
    changes: list[EpisodeChange] = []
    for a, b in itertools.pairwise(edges):
        sl = slice(int(a), int(b))
        cols = [c[sl] for c in (stream.time_us, stream.device, stream.metric, stream.value)]
        both = ValueColumns(*cols, stream.gateway[sl], stream.reading[sl])
        out = outside[sl]
        changes += detection.observe(
            both.take(~out), gateway=stream.gateway[sl][~out], out_of_range=both.take(out)
        )
        changes += detection.silence(int(t[a]) + step)  # the slice's end: silence so far
    return _episodes(changes, int(t[-1]))


def _episodes(changes: list[EpisodeChange], end: int) -> list[Episode]:
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


def _us(stamp: str) -> int:
    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1_000_000)


def score(stream: Stream, episodes: list[Episode], *, grace_s: float = 900) -> dict[str, Any]:
    """Per fault kind and overall: faults, found, recall, episodes, true ones, precision."""
    device_key = {d: i for i, d in enumerate(stream.device_ids, start=1)}
    gateway_key = {g: i for i, g in enumerate(stream.gateway_ids, start=1)}
    device_gateway = dict(zip(stream.device.tolist(), stream.gateway.tolist(), strict=True))
    faults = []
    for f in stream.truth:
        dev = device_key.get(f["device_id"]) if f["device_id"] else None
        metrics = {m.id for m in METRICS if m.name in f["metrics"]}
        faults.append((f["fault"], gateway_key[f["gateway_id"]], dev, metrics, _us(f["start"]),
                       _us(f["end"]) + int(grace_s * 1e6)))  # fmt: skip

    def matches(e: Episode, f: tuple[Any, ...], *, any_metric: bool = False) -> bool:
        _, gw, dev, metrics, start, end = f
        if e.start > end or e.end < start:
            return False
        e_gw = e.gateway if e.device is None else device_gateway.get(e.device)
        if dev is None:
            return e_gw == gw
        if e.device != dev:
            return False
        return any_metric or e.metric is None or not metrics or e.metric in metrics

    table: dict[str, dict[str, float]] = {}
    for kind in sorted({f[0] for f in faults} | set(DETECTOR_FAULT.values())):
        mine = [f for f in faults if f[0] == kind]
        found = sum(any(matches(e, f) for e in episodes) for f in mine)
        eps = [e for e in episodes if DETECTOR_FAULT.get(e.detector) == kind]
        true = sum(any(matches(e, f, any_metric=True) for f in faults) for e in eps)
        table[kind] = {"faults": len(mine), "found": found, "episodes": len(eps), "true": true}
    total = {
        k: sum(row[k] for row in table.values()) for k in ("faults", "found", "episodes", "true")
    }
    table["overall"] = total
    for row in table.values():
        row["recall"] = row["found"] / row["faults"] if row["faults"] else float("nan")
        row["precision"] = row["true"] / row["episodes"] if row["episodes"] else float("nan")
    return table


def false_positives(stream: Stream, episodes: list[Episode]) -> list[str]:
    """The episodes overlapping no fault, described, for tuning by eye."""
    table_stream = Stream(stream.time_us, stream.device, stream.gateway, stream.metric,
                          stream.value, stream.reading, stream.device_ids, stream.gateway_ids,
                          stream.truth)  # fmt: skip
    out = []
    for e in episodes:
        if score(table_stream, [e])["overall"]["true"] == 0:
            name = stream.device_ids[e.device - 1] if e.device else f"gateway {e.gateway}"
            metric = BY_ID[e.metric].name if e.metric else "-"
            out.append(f"{e.detector} {name} {metric} {e.start} {(e.end - e.start) / 6e7:.0f} min")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, action="append", required=True)
    parser.add_argument("--days", type=float, default=5.0)
    parser.add_argument("--interval-s", type=int, default=60)
    parser.add_argument("--show-false-positives", action="store_true")
    args = parser.parse_args(argv)
    sums: dict[str, dict[str, float]] = {}
    for seed in args.seed:
        stream = generate(seed, days=args.days, interval_s=args.interval_s)
        episodes = run(stream)
        for kind, row in score(stream, episodes).items():
            acc = sums.setdefault(kind, dict.fromkeys(("faults", "found", "episodes", "true"), 0))
            for k in acc:
                acc[k] += row[k]
        if args.show_false_positives:
            print(f"seed {seed}:", *false_positives(stream, episodes), sep="\n  ")
    print(
        f"seeds {args.seed}, {args.days:g} days at {args.interval_s} s, faults {len(FAULTS)} kinds"
    )
    print(
        f"{'kind':<20}{'faults':>7}{'found':>7}{'recall':>8}{'episodes':>10}{'true':>6}{'precision':>11}"
    )
    for kind, r in sums.items():
        recall = r["found"] / r["faults"] if r["faults"] else float("nan")
        precision = r["true"] / r["episodes"] if r["episodes"] else float("nan")
        print(f"{kind:<20}{r['faults']:>7}{r['found']:>7}{recall:>8.2f}{r['episodes']:>10}"
              f"{r['true']:>6}{precision:>11.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
