"""A seasonal baseline per series: what is usual at this hour of a weekday or weekend day.

Traffic, temperature, noise and lighting follow the clock: the morning rush or dusk is not
an anomaly, yet the same value at 3 a.m. may be. ``Seasonal`` keeps, for every series, a
robust level and spread per *slot* (hour of the local day, on a weekday or weekend: 48 slots)
and scores a value by its distance from its slot's level, calibrated like ``Deviation``;
a value between its hour's level and a neighbouring hour's scores 0 (levels move within
an hour at dawn or in the rush).

From the same residuals it scores **drift**: an EWMA of the standardised residual, slow
enough that noise averages out, so a sensor that creeps away from its usual daily curve
scores even while each single value still looks plausible. The slot levels learn slowly
(at least ``1 / alpha_min`` visits), so a drift is not absorbed into the baseline.

Warm-up is explicit: a slot scores once it has been seen on ``warmup_days`` earlier days
(and ``warmup_points`` values); before that both scores are 0. State is compact: a row per
series seen (``index`` maps series id to row), so memory follows the series that exist.
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np
import numpy.typing as npt

from processing.detectors import Z_HALF, _calibrated, _checked

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

SLOTS = 48
"""24 hours of a weekday, then 24 hours of a weekend day."""


@numba.njit(cache=True, nogil=True)
def _slot(t_us: int, offset_s: int) -> tuple[int, int]:
    local = t_us // 1_000_000 + offset_s
    day = local // 86_400
    hour = (local % 86_400) // 3_600
    weekend = (day + 3) % 7 >= 5  # 1970-01-01 was a Thursday; Monday = 0
    return int(hour + 24 * weekend), int(day)


@numba.njit(cache=True, nogil=True)
def _seasonal(
    row: I64,
    time: I64,
    value: F64,
    offset_s: int,
    alpha_min: float,
    beta: float,
    drift_half: float,
    warmup_days: int,
    warmup_points: int,
    rel_floor: float,
    n: npt.NDArray[np.int32],
    days: npt.NDArray[np.int32],
    last_day: npt.NDArray[np.int32],
    mean: npt.NDArray[np.float32],
    below: npt.NDArray[np.float32],
    above: npt.NDArray[np.float32],
    step: F64,
    last: F64,
    drift: F64,
    out: F64,
    out_drift: F64,
) -> None:
    for j in range(row.shape[0]):
        r, x = row[j], value[j]
        s, day = _slot(time[j], offset_s)
        out[j] = 0.0
        out_drift[j] = 0.0
        if days[r, s] == 0 or day > last_day[r, s]:  # a new day for this slot
            days[r, s] += 1
            last_day[r, s] = day
        k = n[r, s]
        if k == 0:
            mean[r, s], below[r, s], above[r, s] = x, 0.0, 0.0
            n[r, s] = 1
        else:
            m = float(mean[r, s])
            floor = max(step[r] if step[r] < math.inf else 0.0, rel_floor * abs(m), 1e-9)
            d = x - m
            side = above[r, s] if d > 0 else below[r, s]  # skewed noise: a spread each side
            scale = max(1.4826 * float(side), floor)
            clipped = d  # while warming up, learn every value as it is
            if days[r, s] > warmup_days and k >= warmup_points:
                # Within an hour the usual level may move a lot (dawn, the rush): a value
                # between this hour's level and a neighbouring hour's is not unusual.
                low, high = m, m
                for h in (s - 1, s + 1):
                    h = (h % 24) + 24 * (s // 24)
                    if n[r, h] >= warmup_points:
                        low = min(low, float(mean[r, h]))
                        high = max(high, float(mean[r, h]))
                outside = max(low - x, x - high, 0.0)
                out[j] = _calibrated(outside / scale)
                # drift in a spread of both sides: a skewed series' mean residual is 0 so
                both = max(0.7413 * (float(above[r, s]) + float(below[r, s])), floor)
                drift[r] += beta * (max(-6.0, min(6.0, d / both)) - drift[r])
                out_drift[j] = _calibrated(abs(drift[r]) * Z_HALF / drift_half)
                # Huber-clipped from then on: one spike must not drag the baseline
                clipped = max(-3.0 * scale, min(3.0 * scale, d))
            a = max(alpha_min, 1.0 / (k + 1))
            mean[r, s] = m + a * clipped
            if d > 0:
                above[r, s] += a * (abs(clipped) - above[r, s])
            else:
                below[r, s] += a * (abs(clipped) - below[r, s])
            n[r, s] = k + 1
        if step[r] == 0.0:  # the series' first value: no step seen yet
            step[r] = math.inf
        elif 0.0 < abs(x - last[r]) < step[r]:
            step[r] = abs(x - last[r])
        last[r] = x


class Seasonal:
    """Distance from the usual level at this hour (weekday/weekend), and slow drift from it."""

    def __init__(
        self,
        *,
        utc_offset_s: int = 0,
        alpha_min: float = 0.01,
        beta: float = 0.02,
        drift_half: float = 1.5,
        warmup_days: int = 1,
        warmup_points: int = 24,
        rel_floor: float = 0.01,
    ) -> None:
        self.utc_offset_s = utc_offset_s
        self.alpha_min, self.beta, self.drift_half = alpha_min, beta, drift_half
        self.warmup_days, self.warmup_points, self.rel_floor = warmup_days, warmup_points, rel_floor
        self.arrays: dict[str, npt.NDArray[Any]] = {}
        self.arrays["index"] = np.full(0, -1, dtype=np.int64)
        self._allocate(0)

    def _allocate(self, rows: int) -> None:
        a, old = self.arrays, dict(self.arrays)
        shapes = {"n": np.int32, "days": np.int32, "last_day": np.int32}
        for name, dtype in shapes.items():
            a[name] = np.zeros((rows, SLOTS), dtype=dtype)
        a["mean"] = np.zeros((rows, SLOTS), dtype=np.float32)
        a["below"] = np.zeros((rows, SLOTS), dtype=np.float32)
        a["above"] = np.zeros((rows, SLOTS), dtype=np.float32)
        a["step"] = np.zeros(rows)
        a["last"] = np.zeros(rows)
        a["drift"] = np.zeros(rows)
        for name, before in old.items():
            if name != "index":
                a[name][: len(before)] = before

    def _rows(self, series: I64) -> I64:
        index = self.arrays["index"]
        if len(series) and int(series.max()) >= len(index):
            grown = np.full(max(int(series.max()) + 1, 2 * len(index)), -1, dtype=np.int64)
            grown[: len(index)] = index
            self.arrays["index"] = index = grown
        new = np.unique(series[index[series] < 0])
        if len(new):
            used = len(self.arrays["step"])
            index[new] = np.arange(used, used + len(new))
            self._allocate(used + len(new))
        rows: I64 = index[series]
        return rows

    @property
    def series(self) -> int:
        """How many series have a baseline."""
        return len(self.arrays["step"])

    def update(self, series: I64, time: I64, value: F64) -> tuple[F64, F64]:
        """Seasonal and drift scores in [0, 1], one each per value (time in Unix µs)."""
        s, v = _checked(series, value)
        rows = self._rows(s)
        a = self.arrays
        out, out_drift = np.empty(len(s)), np.empty(len(s))
        _seasonal(
            rows,
            np.ascontiguousarray(time, dtype=np.int64),
            v,
            self.utc_offset_s,
            self.alpha_min,
            self.beta,
            self.drift_half,
            self.warmup_days,
            self.warmup_points,
            self.rel_floor,
            a["n"],
            a["days"],
            a["last_day"],
            a["mean"],
            a["below"],
            a["above"],
            a["step"],
            a["last"],
            a["drift"],
            out,
            out_drift,
        )
        return out, out_drift
