"""Each series' own cycle, learned from its time stamps: none, daily or weekly.

For every series three models predict the next value, and the one that has predicted the
series best lately is its model:

- **no cycle**: the recent level, an EWMA (Huber-clipped: one spike does not drag it);
- **daily**: a level for each half hour of the day (48 bins), plus a common offset that
  follows slow changes of the whole curve;
- **weekly**: a level for each hour of the week (168 bins), plus its offset.

A bin is found from the value's time stamp, never from its position in the series, so
irregular sampling, gaps of days and a missing day cost nothing: the bins not visited keep
their levels. A cycle model is used only where its bin (and the neighbouring bin nearer
in time) has been seen on ``cycle_days`` earlier days (weeks), and only when its mean
absolute error is below ``gain`` times the simpler model's (daily against no cycle,
weekly against daily): a series without a rhythm keeps the no-cycle model, since bins of
noise predict no better than its level. A bin's level averages about ``memory_days`` of
its days, however many values a day brings.

The prediction is a band, from the bin's level to its nearer neighbour's (a curve moves
within half an hour at dawn or in the rush; a square wave jumps), and a value's *surprise*
is its distance outside the band in spreads of that model's residuals from the bin's own
level (one spread for each side: skewed noise has a longer upper tail), floored at the
series' resolution (the smallest step seen between distinct values) and a share of its
level. The surprise is raw:
``processing.likelihood`` turns it into a score; it keeps its sign (above or below the
band). A point is judged from the points before it only; NaN is "no judgement yet"
(fewer than ``warmup`` points).
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

DAY_BINS, WEEK_BINS = 48, 168
BINS = DAY_BINS + WEEK_BINS
"""A row of bins: the day's 48 half hours, then the week's 168 hours (Monday 00:00 first)."""
FLAT, DAILY, WEEKLY = 0, 1, 2
"""The models, as ``Cycles.update`` names the one used for each value."""
N, FIRST, LAST, STEP, LEVEL, BELOW, ABOVE, ERROR, ERRORS = 0, 1, 2, 3, 4, 7, 10, 13, 16
"""Fields of a series' state: values seen, first time (µs), last value, resolution, then
three per model: level (the no-cycle mean, the daily and weekly offsets), spreads below
and above, mean absolute error, and the residuals behind it."""
FIELDS = 19
_MIN_ERRORS = 50  # a cycle model's error must rest on this many values before it is used


@numba.njit(cache=True, nogil=True)
def _band(
    row: int, b: int, nb: int, profile: Any, cycles: Any, need: int, offset: float
) -> tuple[bool, float, float]:
    """The model's band at bin ``b`` (nearer neighbour ``nb``); False while unlearnt."""
    if cycles[b, row] <= need:
        return False, 0.0, 0.0
    lo = hi = float(profile[b, row])
    if cycles[nb, row] > need:
        lo = min(lo, float(profile[nb, row]))
        hi = max(hi, float(profile[nb, row]))
    return True, lo + offset, hi + offset


@numba.njit(cache=True, nogil=True)
def _cycles(
    row: I64,
    time: I64,
    value: F64,
    offset_s: int,
    p: F64,  # alpha, rel_floor, gain, memory_days
    warmup: int,
    need: int,
    st: F64,  # (rows, FIELDS): a series' state side by side (see the field numbers)
    profile: Any,  # (BINS, rows) float32: bin levels
    visits: Any,  # (BINS, rows) int16: values seen in the bin (up to 32,767)
    cycles: Any,  # (BINS, rows) int8: days (weeks) the bin was seen on (up to 100)
    cycle_of: Any,  # (BINS, rows) int16: the last day (week) it was seen on, modulo 2^15
    out: F64,
    expected: F64,
    model: I64,
) -> None:
    alpha, rel_floor, gain, memory = p[0], p[1], p[2], p[3]
    lo = np.zeros(3)
    hi = np.zeros(3)
    ok = np.zeros(3, dtype=np.bool_)
    res = np.zeros(3)
    quarter, day, week, bd, nbd, bw, nbw = -(1 << 62), 0, 0, 0, 0, DAY_BINS, DAY_BINS
    for j in range(row.shape[0]):
        r, x = row[j], value[j]
        k = int(st[r, N])
        if k == 0:
            st[r, LEVEL + 0], st[r, LAST], st[r, STEP] = x, x, math.inf
        sec = time[j] // 1_000_000 + offset_s
        if not 0 <= sec - quarter < 900:  # a batch's values share a few quarter hours:
            day = sec // 86_400  # their divisions cost more than the rest
            in_day = sec - day * 86_400
            quarter = sec - in_day % 900
            weekday = (day + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
            week = (day + 3) // 7
            bd = in_day // 1_800
            nbd = (bd + (1 if in_day % 1_800 >= 900 else -1)) % DAY_BINS
            bw = DAY_BINS + weekday * 24 + in_day // 3_600
            nbw = DAY_BINS + (bw - DAY_BINS + (1 if in_day % 3_600 >= 1_800 else -1)) % WEEK_BINS
        if k == 0:
            st[r, FIRST] = float(time[j])
        for b, c in ((bd, day & 0x7FFF), (bw, week & 0x7FFF)):  # (a day or week's number
            if visits[b, r] == 0 or c != cycle_of[b, r]:  # modulo 2^15: int16 state)
                cycles[b, r] = min(int(cycles[b, r]) + 1, 100)  # only compared to ``need``
                cycle_of[b, r] = c
        floor = max(
            st[r, STEP] if st[r, STEP] < math.inf else 0.0, rel_floor * abs(st[r, LEVEL + 0]), 1e-9
        )
        ok[0], lo[0], hi[0] = True, st[r, LEVEL + 0], st[r, LEVEL + 0]
        ok[1], lo[1], hi[1] = _band(r, bd, nbd, profile, cycles, need, st[r, LEVEL + 1])
        ok[2], lo[2], hi[2] = _band(r, bw, nbw, profile, cycles, need, st[r, LEVEL + 2])
        best = FLAT
        for m in (DAILY, WEEKLY):
            if (
                ok[m]
                and st[r, ERRORS + m] >= _MIN_ERRORS
                and st[r, ERROR + m] < gain * st[r, ERROR + best]
            ):
                best = m
        for m in range(3):
            res[m] = x - hi[m] if x > hi[m] else (x - lo[m] if x < lo[m] else 0.0)
        d = res[best]
        spread = st[r, ABOVE + best] if d > 0 else st[r, BELOW + best]
        scale = max(1.4826 * spread, floor)
        out[j] = d / scale if k >= warmup else np.nan
        expected[j] = 0.5 * (lo[best] + hi[best])
        model[j] = best
        # learn: each model's error and spread from its point prediction (the bin's own
        # level: a band is wide where bins are young and noisy, which would flatter a cycle
        # that is not there), then the levels
        for m in range(3):
            if not ok[m]:
                continue
            e = x - (
                st[r, LEVEL + 0]
                if m == FLAT
                else st[r, LEVEL + m] + profile[bd if m == DAILY else bw, r]
            )
            sm = max(1.4826 * (st[r, ABOVE + m] if e > 0 else st[r, BELOW + m]), floor)
            young = k < warmup if m == FLAT else st[r, ERRORS + m] < _MIN_ERRORS
            c = e if young else max(-3.0 * sm, min(3.0 * sm, e))  # Huber, once it has a spread
            seen = k if m == FLAT else st[r, ERRORS + m]
            a = alpha if seen * alpha >= 1.0 else 1.0 / (seen + 1)  # (no division once old)
            if c > 0:
                st[r, ABOVE + m] += a * (c - st[r, ABOVE + m])
            else:
                st[r, BELOW + m] += a * (-c - st[r, BELOW + m])
            ae = alpha / 2 if st[r, ERRORS + m] * alpha >= 2.0 else 1.0 / (st[r, ERRORS + m] + 1)
            st[r, ERROR + m] += ae * (abs(c) - st[r, ERROR + m])
            st[r, ERRORS + m] += 1
        s0 = max(1.4826 * (st[r, ABOVE + 0] if res[0] > 0 else st[r, BELOW + 0]), floor)
        d0 = x - st[r, LEVEL + 0]
        st[r, LEVEL + 0] += (alpha if k * alpha >= 1.0 else 1.0 / (k + 1)) * (
            max(-3.0 * s0, min(3.0 * s0, d0)) if k >= warmup else d0
        )
        # values a half hour (an hour) brings to a bin, over the series' life so far
        rate = k / max(float(time[j]) - st[r, FIRST], 1.0)
        for m, b, width in ((DAILY, bd, 1_800e6), (WEEKLY, bw, 3_600e6)):
            v = int(visits[b, r])
            e = x - st[r, LEVEL + m] - (profile[b, r] if v > 0 else 0.0)
            if v == 0:
                profile[b, r] = x - st[r, LEVEL + m]
            else:
                sm = max(1.4826 * (st[r, ABOVE + m] if e > 0 else st[r, BELOW + m]), floor)
                if ok[m] and st[r, ERRORS + m] >= _MIN_ERRORS:
                    e = max(-3.0 * sm, min(3.0 * sm, e))
                span = max(min(rate * width, float(k)), 1.0) * memory  # values in memory
                profile[b, r] += (1.0 / (v + 1) if v + 1 < span else 1.0 / span) * e
                if ok[m]:  # the whole curve moves: the offset follows, slowly
                    st[r, LEVEL + m] += alpha / 2 * e
            visits[b, r] = min(v + 1, 32_767)
        diff = abs(x - st[r, LAST])
        if 0.0 < diff < st[r, STEP]:
            st[r, STEP] = diff
        st[r, LAST] = x
        st[r, N] = k + 1


class Cycles:
    """Surprise of each value against its series' learned cycle (none, daily or weekly)."""

    def __init__(
        self,
        *,
        alpha: float = 0.01,
        warmup: int = 120,
        rel_floor: float = 0.001,
        cycle_days: int = 2,
        gain: float = 0.7,
        memory_days: float = 4.0,
        utc_offset_s: int = 0,
    ) -> None:
        self.alpha, self.warmup, self.rel_floor = alpha, warmup, rel_floor
        self.cycle_days, self.gain, self.memory_days = cycle_days, gain, memory_days
        self.utc_offset_s = utc_offset_s
        self.arrays: dict[str, npt.NDArray[Any]] = {}
        self._allocate(0)

    def _allocate(self, rows: int) -> None:
        old, a = dict(self.arrays), self.arrays
        a["state"] = np.zeros((rows, FIELDS))  # a series' fields in one cache line or two
        # by bin, then series: a batch's values share an hour, so its series' bins at that
        # hour lie side by side
        a["profile"] = np.zeros((BINS, rows), dtype=np.float32)
        a["visits"] = np.zeros((BINS, rows), dtype=np.int16)
        a["cycles"] = np.zeros((BINS, rows), dtype=np.int8)
        a["cycle_of"] = np.zeros((BINS, rows), dtype=np.int16)
        for name, before in old.items():
            if name in ("profile", "visits", "cycles", "cycle_of"):
                a[name][:, : before.shape[1]] = before
            else:
                a[name][: len(before)] = before

    @property
    def rows(self) -> int:
        return len(self.arrays["state"])

    def update(self, series: I64, time: I64, value: F64) -> tuple[F64, F64, I64]:
        """Signed surprise (NaN: not judged yet), expected value and model, one per value.

        ``series`` are dense row numbers (ids from 0); ``time`` in Unix µs.
        """
        s = np.ascontiguousarray(series, dtype=np.int64)
        v = np.ascontiguousarray(value, dtype=np.float64)
        if len(s) and int(s.max()) >= self.rows:
            self._allocate(max(int(s.max()) + 1, 2 * self.rows))
        a = self.arrays
        out, expected = np.empty(len(s)), np.empty(len(s))
        model = np.empty(len(s), dtype=np.int64)
        params = np.array([self.alpha, self.rel_floor, self.gain, self.memory_days])
        _cycles(
            s,
            np.ascontiguousarray(time, dtype=np.int64),
            v,
            self.utc_offset_s,
            params,
            self.warmup,
            self.cycle_days,
            a["state"],
            a["profile"],
            a["visits"],
            a["cycles"],
            a["cycle_of"],
            out,
            expected,
            model,
        )
        return out, expected, model
