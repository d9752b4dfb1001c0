"""``citytel detect``: score an exported series (CSV of timestamp,value) for backtesting.

Runs exactly the service's value detectors (``processing.values.ValueDetectors``, built
from ``processing.config.VALUES`` as ``ingest.detect.Detection`` builds them) on one
series, using its time stamps: the learned cycle, the calibration, flatline, and, with
``--metric NAME``, that metric's catalog settings (its physical range, the hour x
weekday grid and drift for metrics with a daily rhythm). Without ``--metric`` the series
is scored as a metric of no known rhythm: deviation (against its own learned cycle)
and flatline.

Writes timestamp,value,score,is_anomaly,detector,expected, one row per input row, each
point scored only from the points before it in time. ``score`` is the point's *alert
score*: the highest of the detectors' scores where it beats every such score of the
series' previous ``alert_window`` (120) values, else 0, so that thresholding it anywhere
gives about one alert per anomaly (its first value above the threshold; nothing while it
lasts unless it grows; a settling time after it). ``detector`` is the detector with the
highest score and ``expected`` the baseline the value was compared with; ``is_anomaly``
is true while an episode is open, with the service's alert discipline (opens at
``--threshold``, one alert while it lasts, a settling time after it closes).
"""

from __future__ import annotations

import csv
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TextIO

import numpy as np
import numpy.typing as npt

from devices.catalog import BY_NAME
from devices.errors import CitytelError
from devices.tables import HIGH, LOW
from ingest.detect import DRIFTING, SCORED, SEASONAL
from processing.checks import range_scores
from processing.config import VALUES, ValueConfig
from processing.episodes import OPENED, alert_scores
from processing.values import ValueDetectors, value_episodes

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]

DETECTORS = ("deviation", "drift", "flatline", "range")
"""The value detectors, as ``Series.scores`` columns and the ``detector`` column names them."""


def parse_time(text: str) -> int:
    """Unix µs of a time stamp: ISO 8601 (no zone: UTC) or Unix seconds (ms if > 1e11)."""
    text = text.strip()
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        return round(number * (1_000 if abs(number) > 1e11 else 1_000_000))
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise CitytelError(f"time stamp {text!r} is neither ISO 8601 nor Unix seconds") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return round(t.timestamp() * 1_000_000)


def read_series(f: TextIO) -> tuple[list[str], I64, F64]:
    """Time stamps as given, in Unix µs, and values; a first row whose value is not a
    number is a header."""
    stamps, times, values = [], [], []
    for number, row in enumerate(csv.reader(f), start=1):
        if not row or not "".join(row).strip():
            continue
        if len(row) < 2:
            raise CitytelError(f"line {number}: expected timestamp,value")
        try:
            x = float(row[1])
        except ValueError:
            if number == 1:
                continue  # header
            raise CitytelError(f"line {number}: value {row[1]!r} is not a number") from None
        if not np.isfinite(x):
            raise CitytelError(f"line {number}: value {row[1]!r} is not finite")
        try:
            t = parse_time(row[0])
        except CitytelError as exc:
            raise CitytelError(f"line {number}: {exc}") from None
        stamps.append(row[0])
        times.append(t)
        values.append(x)
    return stamps, np.array(times, dtype=np.int64), np.array(values, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class Series:
    """A series' scores, one entry per value, in the order given."""

    scores: F64  # (values, len(DETECTORS)): each value detector's score
    expected: F64
    model: I64  # processing.values: the baseline of the deviation
    alert: F64  # the highest score as an alert (processing.episodes.alert_scores)

    @property
    def score(self) -> F64:
        best: F64 = self.scores.max(axis=1)
        return best

    @property
    def detector(self) -> I64:
        """Index into ``DETECTORS`` of the detector that gave the score."""
        which: I64 = self.scores.argmax(axis=1)
        return which


def metric_settings(name: str | None) -> tuple[int, bool, bool]:
    """The metric id (-1: none), and whether the grid and drift apply, as in the service."""
    if name is None:
        return -1, False, False
    metric = BY_NAME.get(name)
    if metric is None:
        raise CitytelError(f"unknown metric {name!r}")
    if metric.id not in SCORED:
        raise CitytelError(
            f"{name} is not scored by the value detectors (its rules judge it in the service)"
        )
    return metric.id, metric.id in SEASONAL, metric.id in DRIFTING


def score_series(
    time_us: I64,
    value: F64,
    *,
    metric: str | None = None,
    config: ValueConfig = VALUES,
    utc_offset_s: int = 0,
) -> Series:
    """Every value detector's score for one series, as the service scores it."""
    metric_id, on_grid, drifting = metric_settings(metric)
    n = len(value)
    order = np.argsort(time_us, kind="stable")  # the service scores each series' past first
    t, x = time_us[order], value[order]
    scores = np.zeros((n, len(DETECTORS)))
    expected = np.full(n, np.nan)
    model = np.full(n, -1, dtype=np.int64)
    valid = np.ones(n, dtype=np.bool_)
    if metric_id >= 0:  # outside the physical range: dead-lettered, then range-checked
        ids = np.full(n, metric_id, dtype=np.int64)
        scores[:, 3] = range_scores(ids, x, LOW, HIGH)
        valid = scores[:, 3] == 0
    detectors = ValueDetectors(config, utc_offset_s=utc_offset_s)
    i = np.flatnonzero(valid)
    if len(i):
        grid = np.full(len(i), on_grid)
        group = np.full(len(i), max(metric_id, 0), dtype=np.int64)
        v = detectors.update(np.zeros(len(i), np.int64), t[i], x[i], grid=grid, group=group)
        scores[i, 0] = v.deviation
        scores[i, 1] = v.drift if drifting else 0.0
        scores[i, 2] = v.flatline
        expected[i], model[i] = v.expected, v.model
    alert = alert_scores(scores.max(axis=1), config.alert_window)
    back = np.empty(n, dtype=np.int64)
    back[order] = np.arange(n)
    return Series(scores[back], expected[back], model[back], alert[back])


def alerts(
    series: Series, time_us: I64, *, open_at: float, config: ValueConfig = VALUES
) -> tuple[B, B]:
    """Where an alert opens, and where one is open (an episode of any detector), with the
    service's alert discipline at threshold ``open_at``."""
    order = np.argsort(time_us, kind="stable")
    close_below = min(config.close_below, open_at)
    t = time_us[order]
    opened = np.zeros(len(t), dtype=np.bool_)
    inside = np.zeros(len(t), dtype=np.bool_)
    for d in range(len(DETECTORS)):
        s = np.ascontiguousarray(series.scores[order, d])
        if not (s >= open_at).any():
            continue
        tracker = value_episodes(config, open_at=open_at, close_below=close_below)
        ch = tracker.update(np.zeros(len(t), dtype=np.int64), t, s, s)
        for kind, start in zip(ch.kind.tolist(), ch.start.tolist(), strict=True):
            if kind != OPENED:
                continue
            # the episode's first point: the first at its start time that reached open_at
            j = int(np.searchsorted(t, start))
            j += int(np.argmax(s[j:] >= open_at))
            opened[j] = True
        starts = ch.start[ch.kind == OPENED]
        ends = ch.end[ch.kind != OPENED]
        for k, start in enumerate(starts.tolist()):
            end = ends[k] if k < len(ends) else t[-1]
            inside[(t >= start) & (t <= end)] = True
    back = np.empty(len(t), dtype=np.int64)
    back[order] = np.arange(len(t))
    return opened[back], inside[back]


def detect(
    source: TextIO, target: TextIO, *, threshold: float = 0.5, metric: str | None = None
) -> int:
    """Score ``source`` into ``target``; returns how many alerts opened."""
    stamps, times, values = read_series(source)
    series = score_series(times, values, metric=metric)
    opened, inside = alerts(series, times, open_at=threshold)
    score, which = series.alert, series.detector
    out = csv.writer(target, lineterminator="\n")
    out.writerow(["timestamp", "value", "score", "is_anomaly", "detector", "expected"])
    for stamp, x, s, r, bad, d, e in zip(
        stamps,
        values.tolist(),
        score.tolist(),
        series.score.tolist(),
        inside.tolist(),
        which.tolist(),
        series.expected.tolist(),
        strict=True,
    ):
        out.writerow(
            [
                stamp,
                repr(x),
                f"{s:.6f}",
                "true" if bad else "false",
                DETECTORS[d] if r > 0 else "",
                "" if np.isnan(e) else f"{e:.6g}",
            ]
        )
    return int(opened.sum())


def main(input_path: str, output_path: str | None, threshold: float, metric: str | None) -> int:
    with open(input_path, newline="") as source:
        if output_path is None:
            found = detect(source, sys.stdout, threshold=threshold, metric=metric)
        else:
            with open(output_path, "w", newline="") as target:
                found = detect(source, target, threshold=threshold, metric=metric)
    print(f"alerts opened: {found}", file=sys.stderr)
    return 0
