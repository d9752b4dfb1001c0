"""Streaming anomaly detectors per series, batched: ``update(series, time, value) -> scores``.

Each score is in [0, 1] and means the same on every series, so one threshold works across
a quantised streetlight power series, a noisy PM2.5 series and a traffic speed series:

- the deviation is measured in units of the series' own robust spread (an EWMA of the
  absolute deviation, one for each side of the level: skewed noise has a longer tail on
  one side), but that spread is never taken below a floor — the series'
  resolution (the smallest step seen between distinct values) and a small share of its
  level — so a series that barely moves does not turn tiny steps into huge z-scores;
- z is mapped through one logistic curve: 0.5 at z = 4, 0.9 at z = 5.3, under 0.1 below
  z = 2.7.

A point is scored from the points before it only (the state is updated after scoring),
and no series scores before it has seen ``warmup`` points. State is dense arrays indexed
by series id.
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

Z_HALF = 4.0
"""The z at which a deviation scores 0.5."""
LONGEST_DECAY = 0.98
"""Per run: how fast ``Flatline`` forgets the longest run a series made."""
Z_SLOPE = 1.7
"""Steepness of the logistic: 0.1 and 0.9 lie 1.3 spreads either side of ``Z_HALF``."""


@numba.njit(cache=True, nogil=True)
def calibrated(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-(z - Z_HALF) * Z_SLOPE))


@numba.njit(cache=True, nogil=True)
def _deviation(
    series: I64,
    value: F64,
    alpha: float,
    warmup: int,
    rel_floor: float,
    n: I64,
    mean: F64,
    below: F64,
    above: F64,
    last: F64,
    step: F64,
    out: F64,
) -> None:
    for j in range(series.shape[0]):
        s = series[j]
        x = value[j]
        k = n[s]
        if k == 0:
            mean[s] = x
            below[s], above[s] = 0.0, 0.0
            last[s] = x
            step[s] = math.inf
            n[s] = 1
            out[j] = 0.0
            continue
        floor = max(step[s] if step[s] < math.inf else 0.0, rel_floor * abs(mean[s]), 1e-9)
        d = x - mean[s]
        # a spread each side: skewed noise (PM2.5, counts) has a longer upper tail
        scale = max(1.4826 * (above[s] if d > 0 else below[s]), floor)
        out[j] = calibrated(abs(d) / scale) if k >= warmup else 0.0
        # Huber-clipped update: one spike must not drag the baseline after it.
        clipped = max(-3.0 * scale, min(3.0 * scale, d))
        a = max(alpha, 1.0 / (k + 1))  # a plain mean while young, an EWMA after
        mean[s] += a * clipped
        if d > 0:
            above[s] += a * (abs(clipped) - above[s])
        else:
            below[s] += a * (abs(clipped) - below[s])
        diff = abs(x - last[s])
        if diff > 0.0 and diff < step[s]:
            step[s] = diff
        last[s] = x
        n[s] = k + 1


@numba.njit(cache=True, nogil=True)
def _flatline(
    series: I64,
    value: F64,
    run_half: float,
    n: I64,
    last: F64,
    run: I64,
    moved: I64,
    longest: F64,
    out: F64,
) -> None:
    for j in range(series.shape[0]):
        s = series[j]
        x = value[j]
        if n[s] > 0 and x == last[s]:
            run[s] += 1
        else:
            if n[s] > 0:
                moved[s] += 1
                # the runs this series makes when healthy (a square wave holds each level
                # for hours): the longest lately, forgotten over about 50 runs
                longest[s] = max(LONGEST_DECAY * longest[s], float(run[s]))
            run[s] = 1
        last[s] = x
        n[s] += 1
        # only a series that did move before can be stuck; a constant one is just constant
        if moved[s] >= 3 and run[s] > 1:
            half = max(run_half, 2.0 * longest[s])
            out[j] = 1.0 / (1.0 + math.exp(-(run[s] - half) / (0.15 * half)))
        else:
            out[j] = 0.0


class _Dense:
    """Per-series state arrays that grow with the largest series id seen."""

    def __init__(self, series: int, ints: tuple[str, ...], floats: tuple[str, ...]) -> None:
        self._ints, self._floats = ints, floats
        self.arrays: dict[str, npt.NDArray[Any]] = {}
        for name in ints:
            self.arrays[name] = np.zeros(series, dtype=np.int64)
        for name in floats:
            self.arrays[name] = np.zeros(series, dtype=np.float64)

    def fit(self, series: I64) -> None:
        need = int(series.max()) + 1 if len(series) else 0
        size = len(next(iter(self.arrays.values())))
        if need > size:
            grow = max(need, 2 * size) - size
            for name, a in self.arrays.items():
                self.arrays[name] = np.concatenate([a, np.zeros(grow, dtype=a.dtype)])


def checked(series: I64, value: F64) -> tuple[I64, F64]:
    if len(series) != len(value):
        raise ValueError("series and value must have the same length")
    s = np.ascontiguousarray(series, dtype=np.int64)
    if len(s) and int(s.min()) < 0:
        raise ValueError("series ids must be >= 0")
    v = np.ascontiguousarray(value, dtype=np.float64)
    if not np.isfinite(v).all():
        raise ValueError("values must be finite")
    return s, v


class Deviation:
    """How far a value is from its series' recent level, in robust spreads (EWMA)."""

    def __init__(
        self, *, alpha: float = 0.05, warmup: int = 30, rel_floor: float = 0.01, series: int = 1024
    ) -> None:
        self.alpha, self.warmup, self.rel_floor = alpha, warmup, rel_floor
        self._state = _Dense(series, ("n",), ("mean", "below", "above", "last", "step"))

    def update(self, series: I64, time: I64, value: F64) -> F64:
        """Scores in [0, 1], one per value, each from the values before it."""
        s, v = checked(series, value)
        self._state.fit(s)
        a = self._state.arrays
        out = np.empty(len(s))
        _deviation(
            s,
            v,
            self.alpha,
            self.warmup,
            self.rel_floor,
            a["n"],
            a["mean"],
            a["below"],
            a["above"],
            a["last"],
            a["step"],
            out,
        )
        return out


class Flatline:
    """A series that moved before and now repeats one value: 0.5 after ``run_half`` repeats,
    or twice the longest run it made lately, if longer (a series that holds its levels)."""

    def __init__(self, *, run_half: float = 30, series: int = 1024) -> None:
        self.run_half = run_half
        self._state = _Dense(series, ("n", "run", "moved"), ("last", "longest"))

    def update(self, series: I64, time: I64, value: F64) -> F64:
        s, v = checked(series, value)
        self._state.fit(s)
        a = self._state.arrays
        out = np.empty(len(s))
        _flatline(
            s,
            v,
            float(self.run_half),
            a["n"],
            a["last"],
            a["run"],
            a["moved"],
            a["longest"],
            out,
        )
        return out


class Combined:
    """Several detectors over the same stream; the score is the highest of theirs."""

    def __init__(self, *detectors: Deviation | Flatline) -> None:
        self.detectors = detectors or (Deviation(), Flatline())

    def update(self, series: I64, time: I64, value: F64) -> F64:
        scores: F64 = np.max([d.update(series, time, value) for d in self.detectors], axis=0)
        return scores
