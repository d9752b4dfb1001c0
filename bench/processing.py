"""Windowed aggregation: Numba kernels against NumPy-only and pandas, in one run.

    python -m bench.processing [--values 10000000] [--series 100000]

The stream: every series reports once per 10 s tick, ticks in time order, so 10 million
values over 100,000 series are 100 ticks spanning about 17 one-minute windows. Each
implementation computes the same 1-minute aggregates (count, sum, min, max, mean,
standard deviation, first, last per series and window):
  numba   streamed through ``processing.windows.Windows`` one tick (100k values) at a time,
          then ``close`` (what the service does);
  numpy   one lexsort by (series, window) and ``reduceat`` over the whole array;
  pandas  ``groupby(["series", "window"]).agg(...)`` over the whole array.
It also times a cold start (empty JIT cache) and a warm start (cache on disk) of the
kernels in fresh processes.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd

from devices.catalog import METRICS, Kind
from devices.columns import ValueColumns
from ingest.detect import Detection
from processing.detectors import Combined, Deviation, Flatline
from processing.windows import Windows

SIZE = 60_000_000
TICK = 10_000_000


def stream(values: int, series: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # type: ignore[type-arg]
    ticks = values // series
    rng = np.random.default_rng(42)
    s = np.tile(np.arange(series, dtype=np.int64), ticks)
    t = np.repeat(np.arange(ticks, dtype=np.int64) * TICK, series) + rng.integers(
        0, TICK, ticks * series
    )
    return s, t, rng.normal(50, 10, ticks * series)


def run_numba(s: np.ndarray, t: np.ndarray, v: np.ndarray, batch: int) -> int:  # type: ignore[type-arg]
    w = Windows(SIZE, series=int(s.max()) + 1)
    n = 0
    for i in range(0, len(s), batch):
        n += len(w.update(s[i : i + batch], t[i : i + batch], v[i : i + batch]))
    return n + len(w.close(np.iinfo(np.int64).max - SIZE))


def run_numpy(s: np.ndarray, t: np.ndarray, v: np.ndarray) -> int:  # type: ignore[type-arg]
    win = t - t % SIZE
    order = np.lexsort((t, win, s))
    s2, w2, t2, v2 = s[order], win[order], t[order], v[order]
    starts = np.flatnonzero(np.r_[True, (np.diff(s2) != 0) | (np.diff(w2) != 0)])
    count = np.diff(np.r_[starts, len(s2)])
    total = np.add.reduceat(v2, starts)
    mean = total / count
    sq = np.add.reduceat(v2 * v2, starts)
    std = np.sqrt(np.maximum(sq / count - mean * mean, 0))
    lo, hi = np.minimum.reduceat(v2, starts), np.maximum.reduceat(v2, starts)
    first, last = v2[starts], v2[np.r_[starts[1:], len(s2)] - 1]
    del std, lo, hi, first, last, t2
    return len(starts)


def run_pandas(s: np.ndarray, t: np.ndarray, v: np.ndarray) -> int:  # type: ignore[type-arg]
    df = pd.DataFrame({"series": s, "window": t - t % SIZE, "time": t, "value": v})
    df = df.sort_values("time", kind="stable")
    out = df.groupby(["series", "window"], sort=False)["value"].agg(
        ["count", "sum", "min", "max", "mean", "std", "first", "last"]
    )
    return len(out)


def run_detectors(s: np.ndarray, t: np.ndarray, v: np.ndarray, batch: int) -> int:  # type: ignore[type-arg]
    detectors = Combined(Deviation(series=int(s.max()) + 1), Flatline(series=int(s.max()) + 1))
    flagged = 0
    for i in range(0, len(s), batch):
        flagged += int(
            (detectors.update(s[i : i + batch], t[i : i + batch], v[i : i + batch]) >= 0.5).sum()
        )
    return flagged


def city_columns(values: int, series: int) -> list[ValueColumns]:
    """The stream as a city's values, one ``ValueColumns`` per tick: devices of the three
    kinds with their catalog metrics, so every detector of ``Detection`` has work."""
    kinds = [[m.id for m in METRICS if m.kind == k] for k in Kind]
    device, metric = [], []
    d = 0
    while len(metric) < series:
        ids = kinds[d % 3]
        device += [d + 1] * len(ids)
        metric += ids
        d += 1
    dev = np.array(device[:series], dtype=np.int32)
    met = np.array(metric[:series], dtype=np.int16)
    low, high = (
        np.array([0.0] + [m.low for m in METRICS]),
        np.array([0.0] + [m.high for m in METRICS]),
    )
    level = np.clip((low[met] + high[met]) / 1000 + 10, low[met], high[met])
    rng = np.random.default_rng(7)
    start = 1_763_359_200_000_000  # Monday 06:00 UTC
    ticks = []
    for k in range(values // series):
        value = np.clip(level * (1 + 0.02 * rng.normal(size=series)), low[met], high[met])
        t = np.full(series, start + k * TICK, dtype=np.int64)
        reading = (dev - 1).astype(np.int32)
        ticks.append(ValueColumns(t, dev, met, value, np.zeros(series, np.int32), reading))
    return ticks


def run_detection(ticks: list[ValueColumns]) -> int:
    """Every detector of the live ingester (``ingest.detect.Detection``), a tick a batch,
    with the silence check after each."""
    detection = Detection(timezone="America/Chicago")
    changes = 0
    for v in ticks:
        gateway = (v.device % 16).astype(np.int32)
        changes += len(detection.observe(v, gateway=gateway, received=v.time_us))
        changes += len(detection.silence(int(v.time_us[0])))
    return changes


def steady_rate(ticks: list[ValueColumns]) -> tuple[float, float]:
    """Values/s of ``Detection`` on one tick once every series is known (median tick), and
    the seconds its first tick took (100,000 new series: state allocated)."""
    detection = Detection(timezone="America/Chicago")
    times = []
    for v in ticks:
        start = time.perf_counter()
        detection.observe(v, gateway=(v.device % 16).astype(np.int32), received=v.time_us)
        detection.silence(int(v.time_us[0]))
        times.append(time.perf_counter() - start)
    return len(ticks[0]) / float(np.median(times[1:])), times[0]


def warm_rate(series: int, ticks: int = 150, timed: int = 20) -> float:
    """Values/s of ``Detection`` once every baseline is warm (median of the last ``timed``
    ticks). The stream above never gets there: 100 ticks of 10 s are fewer than the
    deviation's 120-value warm-up and the seasonal baseline's days, and a cold detector
    skips its scoring. Here each tick comes a day and 10 s after the one before (new
    noise each time), so every series sees its hour on enough days."""
    first = city_columns(series, series)[0]
    low = np.array([0.0] + [m.low for m in METRICS])
    high = np.array([0.0] + [m.high for m in METRICS])
    lo, hi = low[first.metric], high[first.metric]
    rng = np.random.default_rng(11)
    detection = Detection(timezone="America/Chicago")
    times = []
    for k in range(ticks):
        noise = 1 + 0.02 * rng.normal(size=len(first))
        v = ValueColumns(
            first.time_us + k * (86_400_000_000 + TICK),
            first.device,
            first.metric,
            np.clip(first.value * noise, lo, hi),
            first.message,
            first.reading,
        )
        gateway = (v.device % 16).astype(np.int32)
        start = time.perf_counter()
        detection.observe(v, gateway=gateway, received=v.time_us)
        detection.silence(int(v.time_us[0]))
        times.append(time.perf_counter() - start)
    return len(first) / float(np.median(times[-timed:]))


def largest_batch_ms(ticks: list[ValueColumns], values: int) -> float:
    """How long one ``observe`` of a ``values``-value batch holds its thread (warm state)."""
    detection = Detection(timezone="America/Chicago")
    for v in ticks[:3]:
        detection.observe(v)
    v = ticks[3]
    part = v.take(np.arange(len(v)) < values)
    start = time.perf_counter()
    detection.observe(part)
    return (time.perf_counter() - start) * 1000


def run_pandas_ewm(s: np.ndarray, t: np.ndarray, v: np.ndarray) -> int:  # type: ignore[type-arg]
    """The baseline for the detectors: pandas' grouped EWM mean and deviation, no scoring."""
    df = pd.DataFrame({"series": s, "value": v})
    g = df.groupby("series")["value"]
    mean = g.ewm(alpha=0.05).mean().reset_index(level=0, drop=True).sort_index()
    spread = (df["value"] - mean).abs().groupby(df["series"]).ewm(alpha=0.05).mean()
    return len(spread)


def best_of(runs: int, fn, *args) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    best, result = float("inf"), 0
    for _ in range(runs):
        start = time.perf_counter()
        result = fn(*args)
        best = min(best, time.perf_counter() - start)
    return best, result


def start_up(cache_dir: str) -> float:
    code = (
        "import time; t0 = time.perf_counter(); import numpy as np;"
        "from processing.windows import Windows; w = Windows(60);"
        "w.update(np.array([0, 0]), np.array([1, 99]), np.array([1.0, 2.0])); w.close(10**9);"
        "print(time.perf_counter() - t0)"
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return float(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", type=int, default=10_000_000)
    parser.add_argument("--series", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    s, t, v = stream(args.values, args.series)
    run_numba(s[:1000], t[:1000], v[:1000], 1000)  # compile (or load from cache) first
    results = {
        "numba (streamed, dense state)": best_of(args.runs, run_numba, s, t, v, args.series),
        "numpy (lexsort + reduceat)": best_of(args.runs, run_numpy, s, t, v),
        "pandas (groupby agg)": best_of(args.runs, run_pandas, s, t, v),
    }
    ticks = city_columns(args.values, args.series)
    run_detection(ticks[:2])  # compile (or load from cache) first
    detectors = {
        "numba detectors (deviation + flatline)": best_of(
            args.runs, run_detectors, s, t, v, args.series
        ),
        "pandas grouped EWM (mean, spread only)": best_of(args.runs, run_pandas_ewm, s, t, v),
        "all detectors (ingest Detection)": best_of(args.runs, run_detection, ticks),
    }
    windows = {r for _, r in results.values()}
    print(
        f"machine: {os.cpu_count()} cores; {len(s):,} values over {args.series:,} series;"
        f" 1-minute windows; best of {args.runs}; one core (no parallel kernels)"
    )
    for name, (seconds, n) in results.items():
        print(
            f"{name:32s} {len(s) / seconds / 1e6:7.2f} M values/s  ({seconds:.3f} s, {n:,} windows)"
        )
    base = results["numba (streamed, dense state)"][0]
    print(
        f"ratio numba / numpy: {results['numpy (lexsort + reduceat)'][0] / base:.1f}x;"
        f" numba / pandas: {results['pandas (groupby agg)'][0] / base:.1f}x"
    )
    assert len(windows) == 1, f"implementations disagree on the number of windows: {windows}"
    for name, (seconds, _) in detectors.items():
        print(f"{name:40s} {len(s) / seconds / 1e6:7.2f} M values/s  ({seconds:.3f} s)")
    d = list(detectors.values())
    print(
        f"ratio numba detectors / pandas EWM: {d[1][0] / d[0][0]:.1f}x;"
        f" {d[0][1]:,} values scored >= 0.5 in healthy random data"
    )
    print(
        f"ratio all detectors / pandas EWM: {d[1][0] / d[2][0]:.1f}x;"
        f" all detectors / deviation + flatline: {d[0][0] / d[2][0]:.2f}x;"
        f" {d[2][1]:,} episode changes"
    )
    rate, first = steady_rate(ticks[:30])
    print(
        f"all detectors, steady state (median tick of 30): {rate / 1e6:.2f} M values/s;"
        f" first tick (100,000 new series) {first:.2f} s"
    )
    print(
        f"all detectors, warm baselines (a tick a day, median of the last 20 of 150):"
        f" {warm_rate(args.series) / 1e6:.2f} M values/s"
    )
    for n in (35_000, 100_000):
        print(f"one observe() of {n:,} values holds its thread {largest_batch_ms(ticks, n):.1f} ms")
    with tempfile.TemporaryDirectory() as cache:
        cold, warm = start_up(cache), start_up(cache)
    print(f"start-up to first result: cold (compiling) {cold:.2f} s, warm (cached) {warm:.2f} s")


if __name__ == "__main__":
    main()
