"""From per-point scores to episodes: an anomaly opens, keeps its peak, and closes.

Operations staff act on episodes, not on a row per reading. Per series (and detector):
an episode opens at the first score at or above ``open_at``, updates its peak score and
the observed value at the peak, and closes after ``close_after`` consecutive scores
below ``close_below`` (hysteresis, so a score hovering at the threshold does not open
and close an episode at every point). After it closes, the series' next ``settle``
points cannot open another (an anomaly that ebbs and flows is one alert, not several).
An episode is not re-alerted while it lasts: one opening, one closing. State is dense
arrays by series id.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

OPENED, CLOSED = 1, 2


@dataclass(frozen=True, slots=True)
class Changes:
    """Episodes that opened or closed in a batch (an episode may do both in one batch)."""

    series: I64
    kind: I64  # OPENED or CLOSED
    start: I64  # time of the first anomalous point
    end: I64  # time of the last anomalous point (for CLOSED; = start for OPENED)
    peak: F64  # highest score so far
    observed: F64  # the value at the peak

    def __len__(self) -> int:
        return len(self.series)


@numba.njit(cache=True, nogil=True)
def _track(
    series: I64,
    time: I64,
    score: F64,
    value: F64,
    open_at: float,
    close_below: float,
    close_after: int,
    settle: int,
    is_open: I64,
    start: I64,
    last_bad: I64,
    quiet: I64,
    peak: F64,
    observed: F64,
    out_i: I64,
    out_f: F64,
) -> int:
    k = 0
    for j in range(series.shape[0]):
        s, t, x = series[j], time[j], score[j]
        if is_open[s] == 0:
            if quiet[s] < 0:  # settling after an episode
                quiet[s] += 1
                continue
            if x >= open_at:
                is_open[s], start[s], last_bad[s], quiet[s] = 1, t, t, 0
                peak[s], observed[s] = x, value[j]
                out_i[k, 0], out_i[k, 1], out_i[k, 2], out_i[k, 3] = s, OPENED, t, t
                out_f[k, 0], out_f[k, 1] = x, value[j]
                k += 1
            continue
        if x >= close_below:
            quiet[s] = 0
            last_bad[s] = t
            if x > peak[s]:
                peak[s], observed[s] = x, value[j]
            continue
        quiet[s] += 1
        if quiet[s] >= close_after:
            is_open[s] = 0
            quiet[s] = -settle
            out_i[k, 0], out_i[k, 1], out_i[k, 2], out_i[k, 3] = s, CLOSED, start[s], last_bad[s]
            out_f[k, 0], out_f[k, 1] = peak[s], observed[s]
            k += 1
    return k


class Episodes:
    """Turns scores into episode openings and closings, series by series."""

    def __init__(
        self,
        *,
        open_at: float = 0.5,
        close_below: float = 0.3,
        close_after: int = 3,
        settle: int = 0,
        series: int = 1024,
    ) -> None:
        if not 0 <= close_below <= open_at <= 1:
            raise ValueError("need 0 <= close_below <= open_at <= 1")
        self.open_at, self.close_below, self.close_after = open_at, close_below, close_after
        self.settle = settle
        self._i = np.zeros((4, series), dtype=np.int64)  # is_open, start, last_bad, quiet
        # (quiet < 0: settling, points left)
        self._f = np.zeros((2, series), dtype=np.float64)  # peak, observed

    @property
    def open_series(self) -> I64:
        """Series with an episode open now."""
        return np.flatnonzero(self._i[0])

    def update(self, series: I64, time: I64, score: F64, value: F64) -> Changes:
        s = np.ascontiguousarray(series, dtype=np.int64)
        if len(s) and int(s.max()) >= self._i.shape[1]:
            grow = max(int(s.max()) + 1, 2 * self._i.shape[1]) - self._i.shape[1]
            self._i = np.concatenate([self._i, np.zeros((4, grow), np.int64)], axis=1)
            self._f = np.concatenate([self._f, np.zeros((2, grow))], axis=1)
        # a point opens or closes at most one episode of its series
        out_i = np.empty((len(s), 4), dtype=np.int64)
        out_f = np.empty((len(s), 2), dtype=np.float64)
        k = _track(
            s,
            np.ascontiguousarray(time, dtype=np.int64),
            np.ascontiguousarray(score, dtype=np.float64),
            np.ascontiguousarray(value, dtype=np.float64),
            self.open_at,
            self.close_below,
            self.close_after,
            self.settle,
            self._i[0],
            self._i[1],
            self._i[2],
            self._i[3],
            self._f[0],
            self._f[1],
            out_i,
            out_f,
        )
        return Changes(
            out_i[:k, 0], out_i[:k, 1], out_i[:k, 2], out_i[:k, 3], out_f[:k, 0], out_f[:k, 1]
        )


@numba.njit(cache=True, nogil=True)
def _fresh(score: F64, window: int, out: F64) -> None:
    best = np.empty(score.shape[0], dtype=np.int64)  # a monotone deque of positions
    head, tail = 0, 0
    for j in range(score.shape[0]):
        while head < tail and best[head] < j - window:
            head += 1
        older = score[best[head]] if head < tail else -1.0
        out[j] = score[j] if score[j] > older else 0.0
        while head < tail and score[best[tail - 1]] <= score[j]:
            tail -= 1
        best[tail] = j
        tail += 1


def alert_scores(score: F64, window: int) -> F64:
    """One series' scores as alerts: a score where it is higher than every score of the
    ``window`` values before it, else 0.

    Thresholded anywhere, this gives about one alert per anomaly: its first value above
    the threshold alerts, the values after it while the anomaly lasts do not (unless it
    grows), and after it the series settles for ``window`` values.
    """
    s = np.ascontiguousarray(score, dtype=np.float64)
    out = np.empty(len(s))
    _fresh(s, window, out)
    return out
