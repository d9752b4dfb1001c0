"""Event-time tumbling windows per series, as mergeable partial aggregates.

The state is dense NumPy arrays indexed by series id: for each series, the window it is
filling now. A value for that window updates it in place; a value for a later window
emits the filled window as a *partial* and starts the new one; a value for an earlier
window (late) is emitted at once as a one-value partial. Partials are mergeable (count,
sum, mean, M2, min, max, first, last), so a window emitted in several partials — a late
value re-opening it — merges to exactly the aggregate of all its values, whatever the
arrival order. ``close`` emits the windows the watermark has passed.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
import numpy.typing as npt

from devices.columns import Partials

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Snapshot = tuple[I64, I64, I64, F64]
EMPTY = np.iinfo(np.int64).min
"""``window`` of a series whose state holds nothing."""


_FIELDS = (
    "series",
    "window",
    "count",
    "sum",
    "mean",
    "m2",
    "min",
    "max",
    "first_time",
    "first",
    "last_time",
    "last",
    "late",
)


@numba.njit(cache=True, nogil=True)
def _emit(
    out_i: I64,
    out_f: F64,
    k: int,
    s: int,
    w: int,
    n: int,
    sm: float,
    mean: float,
    m2: float,
    mn: float,
    mx: float,
    ft: int,
    fv: float,
    lt: int,
    lv: float,
    late: int,
) -> None:
    out_i[k, 0] = s
    out_i[k, 1] = w
    out_i[k, 2] = n
    out_i[k, 3] = ft
    out_i[k, 4] = lt
    out_i[k, 5] = late
    out_f[k, 0] = sm
    out_f[k, 1] = mean
    out_f[k, 2] = m2
    out_f[k, 3] = mn
    out_f[k, 4] = mx
    out_f[k, 5] = fv
    out_f[k, 6] = lv


@numba.njit(cache=True, nogil=True)
def _accumulate(
    series: I64,
    time: I64,
    value: F64,
    size: int,
    win: I64,
    st_i: I64,
    st_f: F64,
    out_i: I64,
    out_f: F64,
) -> int:
    """Fold values into the per-series state; write emitted partials; return how many.

    st_i columns: count, first_time, last_time. st_f: sum, mean, m2, min, max, first, last.
    """
    k = 0
    for j in range(series.shape[0]):
        s = series[j]
        t = time[j]
        v = value[j]
        w = t - t % size
        cur = win[s]
        if w != cur and cur != EMPTY and w < cur:  # late: its own one-value partial
            _emit(out_i, out_f, k, s, w, 1, v, v, 0.0, v, v, t, v, t, v, 1)
            k += 1
            continue
        if w != cur:
            if cur != EMPTY:  # the series moved on: emit the window it was filling
                _emit(
                    out_i,
                    out_f,
                    k,
                    s,
                    cur,
                    st_i[s, 0],
                    st_f[s, 0],
                    st_f[s, 1],
                    st_f[s, 2],
                    st_f[s, 3],
                    st_f[s, 4],
                    st_i[s, 1],
                    st_f[s, 5],
                    st_i[s, 2],
                    st_f[s, 6],
                    0,
                )
                k += 1
            win[s] = w
            st_i[s, 0] = 1
            st_i[s, 1] = t
            st_i[s, 2] = t
            st_f[s, 0] = v
            st_f[s, 1] = v
            st_f[s, 2] = 0.0
            st_f[s, 3] = v
            st_f[s, 4] = v
            st_f[s, 5] = v
            st_f[s, 6] = v
            continue
        n = st_i[s, 0] + 1
        st_i[s, 0] = n
        st_f[s, 0] += v
        delta = v - st_f[s, 1]
        st_f[s, 1] += delta / n
        st_f[s, 2] += delta * (v - st_f[s, 1])
        if v < st_f[s, 3]:
            st_f[s, 3] = v
        if v > st_f[s, 4]:
            st_f[s, 4] = v
        if t < st_i[s, 1]:
            st_i[s, 1] = t
            st_f[s, 5] = v
        if t >= st_i[s, 2]:
            st_i[s, 2] = t
            st_f[s, 6] = v
    return k


@numba.njit(cache=True, nogil=True)
def _close(before: I64, size: int, win: I64, st_i: I64, st_f: F64, out_i: I64, out_f: F64) -> int:
    """Emit and clear every window that ends at or before its series' ``before``."""
    k = 0
    for s in range(min(win.shape[0], before.shape[0])):
        cur = win[s]
        if cur != EMPTY and cur + size <= before[s]:
            _emit(
                out_i,
                out_f,
                k,
                s,
                cur,
                st_i[s, 0],
                st_f[s, 0],
                st_f[s, 1],
                st_f[s, 2],
                st_f[s, 3],
                st_f[s, 4],
                st_i[s, 1],
                st_f[s, 5],
                st_i[s, 2],
                st_f[s, 6],
                0,
            )
            k += 1
            win[s] = EMPTY
    return k


class Windows:
    """Tumbling windows of ``size`` (in the input's time unit) over series ids 0..n-1."""

    def __init__(self, size: int, *, series: int = 1024) -> None:
        if size <= 0:
            raise ValueError("window size must be positive")
        self.size = size
        self._win = np.full(series, EMPTY, dtype=np.int64)
        self._st_i = np.zeros((series, 3), dtype=np.int64)
        self._st_f = np.zeros((series, 7), dtype=np.float64)

    def update(self, series: I64, time: I64, value: F64) -> Partials:
        """Fold a batch in (any order); the partials of windows it moved past or re-opened."""
        series, time, value = checked(series, time, value)
        if len(series) and int(series.max()) >= len(self._win):
            self._grow(int(series.max()) + 1)
        out_i, out_f = _buffers(len(series))
        k = _accumulate(
            series, time, value, self.size, self._win, self._st_i, self._st_f, out_i, out_f
        )
        return _partials(out_i[:k], out_f[:k])

    def close(self, before: int | I64) -> Partials:
        """Emit the windows ending at or before ``before`` (the watermark minus lateness):
        one time for every series, or one per series id (series beyond the array stay)."""
        limit = self._before(before)
        out_i, out_f = _buffers(int(np.count_nonzero(self._win != EMPTY)))
        k = _close(limit, self.size, self._win, self._st_i, self._st_f, out_i, out_f)
        return _partials(out_i[:k], out_f[:k])

    def due(self, before: int | I64) -> I64:
        """Series whose window ends at or before ``before`` (what ``close`` would emit)."""
        limit = self._before(before)
        n = min(len(self._win), len(limit))
        win = self._win[:n]
        return np.flatnonzero((win != EMPTY) & (win + self.size <= limit[:n]))

    def _before(self, before: int | I64) -> I64:
        if isinstance(before, int | np.integer):
            return np.full(len(self._win), before, dtype=np.int64)
        return np.ascontiguousarray(before, dtype=np.int64)

    def snapshot(self, series: I64) -> Snapshot:
        """The state of these series, for ``restore`` if what follows must be undone."""
        ids = np.unique(series[series < len(self._win)])
        return ids, self._win[ids].copy(), self._st_i[ids].copy(), self._st_f[ids].copy()

    def restore(self, snapshot: Snapshot) -> None:
        """Put back the state ``snapshot`` took."""
        ids, win, st_i, st_f = snapshot
        self._win[ids], self._st_i[ids], self._st_f[ids] = win, st_i, st_f

    def _grow(self, n: int) -> None:
        n = max(n, 2 * len(self._win))
        old = len(self._win)
        self._win = np.concatenate([self._win, np.full(n - old, EMPTY, dtype=np.int64)])
        self._st_i = np.concatenate([self._st_i, np.zeros((n - old, 3), dtype=np.int64)])
        self._st_f = np.concatenate([self._st_f, np.zeros((n - old, 7), dtype=np.float64)])


def checked(series: I64, time: I64, value: F64) -> tuple[I64, I64, F64]:
    if not (len(series) == len(time) == len(value)):
        raise ValueError("series, time and value must have the same length")
    s = np.ascontiguousarray(series, dtype=np.int64)
    if len(s) and int(s.min()) < 0:
        raise ValueError("series ids must be >= 0")
    v = np.ascontiguousarray(value, dtype=np.float64)
    if not np.isfinite(v).all():
        raise ValueError("values must be finite")
    return s, np.ascontiguousarray(time, dtype=np.int64), v


def _buffers(n: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    return np.empty((n, 6), dtype=np.int64), np.empty((n, 7), dtype=np.float64)


def _partials(i: npt.NDArray[np.int64], f: npt.NDArray[np.float64]) -> Partials:
    return Partials(
        i[:, 0],
        i[:, 1],
        i[:, 2],
        f[:, 0],
        f[:, 1],
        f[:, 2],
        f[:, 3],
        f[:, 4],
        i[:, 3],
        f[:, 5],
        i[:, 4],
        f[:, 6],
        i[:, 5],
    )


def merge(p: Partials) -> Partials:
    """Merge partials of the same (series, window) into one each (Chan et al. for M2)."""
    if len(p) == 0:
        return p
    order = np.lexsort((p.window, p.series))
    cols = {name: getattr(p, name)[order] for name in _FIELDS}
    starts = np.flatnonzero(
        np.r_[True, (np.diff(cols["series"]) != 0) | (np.diff(cols["window"]) != 0)]
    )
    return _merge_groups(cols, starts)


def _merge_groups(c: dict[str, npt.NDArray[Any]], starts: npt.NDArray[np.intp]) -> Partials:
    count = np.add.reduceat(c["count"], starts)
    total = np.add.reduceat(c["sum"], starts)
    group = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(c["count"])]))
    mean = total / count
    # M2 of a union: sum of the parts' M2 plus each part's n * (mean_part - mean)^2
    m2 = np.add.reduceat(c["m2"] + c["count"] * (c["mean"] - mean[group]) ** 2, starts)
    first_idx = _arg_by_group(c["first_time"], group, len(starts), np.argmin)
    last_idx = _arg_by_group(c["last_time"], group, len(starts), np.argmax)
    return Partials(
        c["series"][starts],
        c["window"][starts],
        count,
        total,
        mean,
        m2,
        np.minimum.reduceat(c["min"], starts),
        np.maximum.reduceat(c["max"], starts),
        c["first_time"][first_idx],
        c["first"][first_idx],
        c["last_time"][last_idx],
        c["last"][last_idx],
        np.add.reduceat(c["late"], starts),
    )


def _arg_by_group(
    t: I64, group: npt.NDArray[np.int64], n: int, pick: object
) -> npt.NDArray[np.intp]:
    """Index of the earliest (argmin) or latest (argmax) time within each group."""
    order = np.lexsort((t if pick is np.argmin else -t, group))
    first_of_group = np.r_[True, np.diff(group[order]) != 0]
    return order[first_of_group]


def singles(series: I64, time: I64, value: F64, size: int) -> Partials:
    """Each value as a one-value partial of its window, marked late (bypasses the state)."""
    n = len(series)
    ones = np.ones(n, dtype=np.int64)
    return Partials(
        series.astype(np.int64),
        time - time % size,
        ones,
        value,
        value.copy(),
        np.zeros(n),
        value.copy(),
        value.copy(),
        time.copy(),
        value.copy(),
        time.copy(),
        value.copy(),
        ones.copy(),
    )
