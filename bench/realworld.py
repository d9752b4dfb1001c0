"""Detection quality on public labelled real-world streams: the window score.

    python -m bench.realworld --corpus DIR [--corpus DIR ...]

A corpus directory holds ``<family>/<stream>.csv`` files of ``timestamp,value`` (as
``citytel detect`` reads them) and ``windows.json``, mapping each ``<family>/<stream>.csv``
to its labelled anomaly windows ``[[start, end], ...]`` (time stamps as in the CSV, both
ends inside). ``bench.corpora`` writes that layout from SKAB and TSB-UAD; nothing is
downloaded here.

Each stream is scored by ``citytel detect``'s code (``citytel.detect.score_series``, the
service's value detectors and configuration). Its *detections*, first line: every point
whose ``score`` column (the alert score) is at or above the threshold, as a user
thresholding the command's output gets them; second line: the alerts it opens
(``citytel.detect.alerts``: the service's episodes at that threshold); third: every point
whose raw score (before the alert discipline) is at or above it. Baselines run
in the same process on the same streams: an EWMA z-score (span one day of the stream's
points) and a rolling median/MAD z-score (window one day, at most 2,000 points), whose
detections are every point at or above the threshold, as such detectors are usually run,
and, in a second line, only the first point of each run above it.

The window score (docs/quality.md):

- a window earns ``w(y) = 2 / (1 + exp(5 y)) - 1`` for its earliest detection, where
  ``y = (t - end) / (end - start)`` runs from -1 at the window's start to 0 at its end
  (0.987 at the start, 0.85 halfway, 0 at the end); later detections in it earn nothing;
- a window without a detection costs 1;
- a detection outside every window costs ``FP_COST`` (0.11);
- ``raw = sum of credits - misses - FP_COST * false detections``, over all streams of a
  corpus; one threshold for all its streams, the one with the best total;
- normalised: ``100 * (raw - null) / (perfect - null)``, ``null = -windows`` (no
  detections), ``perfect`` = every window detected at its start, nothing else.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from citytel.detect import alerts, parse_time, read_series, score_series

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]

FP_COST = 0.11
"""A detection outside every window costs this share of a missed window."""
DAY_US = 86_400_000_000


def earliness(y: float) -> float:
    """Credit of a detection at relative position ``y`` in its window (-1 start, 0 end)."""
    return 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


PERFECT = earliness(-1.0)


@dataclass(slots=True)
class Stream:
    name: str
    family: str
    time_us: I64
    value: F64
    windows: list[tuple[int, int]]


@dataclass(slots=True)
class Tally:
    credit: float = 0.0
    missed: int = 0
    false: int = 0
    windows: int = 0

    def add(self, other: Tally) -> None:
        self.credit += other.credit
        self.missed += other.missed
        self.false += other.false
        self.windows += other.windows

    @property
    def raw(self) -> float:
        return self.credit - self.missed - FP_COST * self.false

    @property
    def score(self) -> float:
        if not self.windows:
            return float("nan")
        null = -self.windows
        return 100.0 * (self.raw - null) / (PERFECT * self.windows - null)


def tally(stream: Stream, detected: B) -> Tally:
    """The window score's terms for one stream's detections."""
    t = stream.time_us[detected]
    inside = np.zeros(len(t), dtype=np.bool_)
    out = Tally(windows=len(stream.windows))
    for start, end in stream.windows:
        hit = (t >= start) & (t <= end)
        inside |= hit
        if hit.any():
            first = int(t[hit].min())
            out.credit += earliness((first - end) / max(end - start, 1))
        else:
            out.missed += 1
    out.false = int((~inside).sum())
    return out


def load(corpus: Path) -> list[Stream]:
    labelled = json.loads((corpus / "windows.json").read_text())
    streams = []
    for name, spans in sorted(labelled.items()):
        with (corpus / name).open(newline="") as f:
            _, t, v = read_series(f)
        windows = [(parse_time(a), parse_time(b)) for a, b in spans]
        streams.append(Stream(name, name.split("/")[0], t, v, windows))
    return streams


def points_a_day(t: I64) -> int:
    step = float(np.median(np.diff(t))) if len(t) > 1 else DAY_US
    return max(2, round(DAY_US / max(step, 1.0)))


def ewma_z(s: Stream) -> F64:
    """|x - mean| / std of the points before, EWMA of span one day."""
    x = pd.Series(s.value)
    span = points_a_day(s.time_us)
    mean = x.ewm(span=span).mean().shift(1)
    std = x.ewm(span=span).std().shift(1)
    z = ((x - mean).abs() / std.where(std > 0)).fillna(0.0).to_numpy().copy()
    z[: min(len(z), 30)] = 0.0
    return np.asarray(z, dtype=np.float64)


def median_mad_z(s: Stream) -> F64:
    """|x - median| / (1.4826 MAD) over the previous day's points (at most 2,000)."""
    x = pd.Series(s.value)
    w = min(points_a_day(s.time_us), 2_000)
    med = x.rolling(w, min_periods=30).median().shift(1)
    mad = (x - med).abs().rolling(w, min_periods=30).median().shift(1)
    z = ((x - med).abs() / (1.4826 * mad).where(mad > 0)).fillna(0.0).to_numpy()
    return np.asarray(z, dtype=np.float64)


def first_of_runs(above: B) -> B:
    out = above.copy()
    out[1:] &= ~above[:-1]
    return out


def best(
    streams: list[Stream], thresholds: Iterable[float], detect: Callable[[int, float], B]
) -> tuple[float, Tally, dict[str, Tally]]:
    """The threshold with the best total over ``streams``; its total and family tallies."""
    top: tuple[float, Tally, dict[str, Tally]] | None = None
    for threshold in thresholds:
        total, families = Tally(), defaultdict(Tally)
        for i, s in enumerate(streams):
            t = tally(s, detect(i, threshold))
            total.add(t)
            families[s.family].add(t)
        if top is None or total.raw > top[1].raw:
            top = (threshold, total, dict(families))
    none = Tally(missed=sum(len(s.windows) for s in streams))
    none.windows = none.missed
    if top is None or none.raw > top[1].raw:  # staying silent is a threshold too
        fam: dict[str, Tally] = defaultdict(Tally)
        for s in streams:
            fam[s.family].add(Tally(missed=len(s.windows), windows=len(s.windows)))
        top = (math.inf, none, dict(fam))
    return top


def _quantile_grid(scores: list[F64]) -> F64:
    pooled = np.concatenate(scores)
    pooled = pooled[pooled > 0]
    if not len(pooled):
        return np.array([1.0])
    q = 1.0 - np.logspace(-1, -5.5, 40)
    return np.unique(np.quantile(pooled, q))


def run(corpus: Path) -> list[tuple[str, float, Tally, dict[str, Tally]]]:
    streams = load(corpus)
    started = time.perf_counter()
    series = [score_series(s.time_us, s.value) for s in streams]
    elapsed = time.perf_counter() - started
    points = sum(len(s.value) for s in streams)
    print(
        f"{corpus}: {len(streams)} streams, {points:,} points, "
        f"{sum(len(s.windows) for s in streams)} windows; citytel scored them in {elapsed:.1f} s"
    )
    cache: dict[tuple[int, float], B] = {}

    def citytel(i: int, threshold: float) -> B:
        key = (i, threshold)
        if key not in cache:
            cache[key] = alerts(series[i], streams[i].time_us, open_at=threshold)[0]
        return cache[key]

    grid = np.unique(
        np.concatenate(
            [np.logspace(-4, -1.5, 11), np.linspace(0.05, 0.95, 19), 1 - np.logspace(-2, -6, 9)]
        )
    )
    results = [
        (
            "citytel detect: score column",
            *best(streams, grid.tolist(), lambda i, th: series[i].alert >= th),
        ),
        ("citytel detect: alerts (episodes opened)", *best(streams, grid.tolist(), citytel)),
        (
            "citytel detect: raw score, every point",
            *best(streams, grid.tolist(), lambda i, th: series[i].score >= th),
        ),
    ]
    for name, baseline in (
        ("EWMA z-score (span 1 day)", ewma_z),
        ("median/MAD z-score", median_mad_z),
    ):
        z = [baseline(s) for s in streams]
        thresholds = _quantile_grid(z).tolist()
        results.append((name, *best(streams, thresholds, lambda i, th, z=z: z[i] >= th)))
        results.append(
            (
                f"{name}, first of a run",
                *best(streams, thresholds, lambda i, th, z=z: first_of_runs(z[i] >= th)),
            )
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--corpus", type=Path, action="append", required=True)
    args = parser.parse_args()
    for corpus in args.corpus:
        results = run(corpus)
        families = sorted({f for r in results for f in r[3]})
        head = f"{'detector':42} {'threshold':>9} {'score':>6} {'found':>7} {'false':>6}"
        print(head + "".join(f" {f:>8}" for f in families))
        for name, threshold, total, fam in results:
            found = total.windows - total.missed
            line = f"{name:42} {threshold:9.4g} {total.score:6.1f} {found:3}/{total.windows:<3}"
            line += f" {total.false:6}"
            print(line + "".join(f" {fam[f].score:8.1f}" for f in families))
        citytel_score, ewma_score = results[0][2].score, results[3][2].score
        ratio = citytel_score / ewma_score if ewma_score else math.inf
        print(f"ratio citytel / EWMA z-score: {ratio:.2f}x\n")


if __name__ == "__main__":
    main()
