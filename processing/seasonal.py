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

Both scores are measured less the common movement of a *group* of series (the same
metric over the city): a weather front moves every thermometer and a cloud dims every
photocell, a faulty sensor moves alone. So they need a few devices reporting the metric:
a lone sensor's slow drift is its group's movement, and cancels out.

Warm-up is explicit: a slot scores once it has been seen on ``warmup_days`` earlier days
(and ``warmup_points`` values); before that both scores are 0, except that a weekend hour
not learnt yet is judged by the same hour on weekdays (and back). State is compact: a row per
series seen (``index`` maps series id to row), so memory follows the series that exist.
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np
import numpy.typing as npt

from processing.detectors import Z_HALF, calibrated, checked

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
I32 = npt.NDArray[np.int32]
F32 = npt.NDArray[np.float32]

SLOTS = 48
"""24 hours of a weekday, then 24 hours of a weekend day."""
N, DAYS, LAST_DAY = 0, 1, 2
"""Fields of a slot's integer state: values seen, days seen, the last day seen."""
MEAN, BELOW, ABOVE = 0, 1, 2
"""Fields of a slot's level and spreads (below and above it). A slot's fields lie side by
side; the state is by slot, then series (``slots_i[slot, row, field]``)."""
GROUPS = 64
"""Groups of series that share the weather (the metric id, in citytel)."""


@numba.njit(cache=True, nogil=True)
def _slot(t_us: int, offset_s: int) -> tuple[int, int]:
    local = t_us // 1_000_000 + offset_s
    day = local // 86_400
    hour = (local % 86_400) // 3_600
    weekend = (day + 3) % 7 >= 5  # 1970-01-01 was a Thursday; Monday = 0
    return int(hour + 24 * weekend), int(day)


@numba.njit(cache=True, nogil=True)
def _warm(si: I32, r: int, s: int, warmup_days: int, warmup_points: int) -> bool:
    return bool(si[s, r, DAYS] > warmup_days and si[s, r, N] >= warmup_points)


@numba.njit(cache=True, nogil=True)
def _unusual(x: float, r: int, s: int, si: I32, sf: F32, scale: float, warmup_points: int) -> float:
    """Distance in spreads outside the band between this hour's level and its neighbours'
    (within an hour the usual level may move a lot: dawn, the rush)."""
    m = float(sf[s, r, MEAN])
    low, high = m, m
    for h in (s - 1, s + 1):
        h = (h % 24) + 24 * (s // 24)
        if si[h, r, N] >= warmup_points:
            low = min(low, float(sf[h, r, MEAN]))
            high = max(high, float(sf[h, r, MEAN]))
    return max(low - x, x - high, 0.0) / scale


@numba.njit(cache=True, nogil=True)
def _seasonal(
    row: I64,
    group: I64,
    time: I64,
    value: F64,
    offset_s: int,
    p: F64,  # alpha_min, beta, drift_half, rel_floor, common_alpha
    warmup_days: int,
    warmup_points: int,
    raw: bool,
    si: I32,
    sf: F32,
    step: F64,
    last: F64,
    drift: F64,
    common: F64,
    out: F64,
    out_drift: F64,
) -> None:
    alpha_min, beta, drift_half, rel_floor, common_alpha = p[0], p[1], p[2], p[3], p[4]
    hour_start, s, day = -(1 << 62), 0, 0  # the local hour last seen (none yet)
    for j in range(row.shape[0]):
        r, x = row[j], value[j]
        local = time[j] // 1_000_000 + offset_s
        if not 0 <= local - hour_start < 3_600:  # a batch's values share a few hours:
            s, day = _slot(time[j], offset_s)  # its divisions cost more than the rest
            hour_start = local - local % 3_600
        out[j], out_drift[j] = -1.0 if raw else 0.0, 0.0
        if si[s, r, DAYS] == 0 or day > si[s, r, LAST_DAY]:  # a new day for this slot
            si[s, r, DAYS] += 1
            si[s, r, LAST_DAY] = day
        k = si[s, r, N]
        if k == 0:
            sf[s, r, MEAN], sf[s, r, BELOW], sf[s, r, ABOVE] = x, 0.0, 0.0
            si[s, r, N] = 1
        else:
            m = float(sf[s, r, MEAN])
            floor = max(step[r] if step[r] < math.inf else 0.0, rel_floor * abs(m), 1e-9)
            d = x - m
            clipped = d  # while warming up, learn every value as it is
            if _warm(si, r, s, warmup_days, warmup_points):
                # residuals in a spread of both sides (a skewed series' mean residual is 0
                # so), less what every series of the group moved (the weather, a cloud:
                # not this sensor)
                both = max(0.7413 * (float(sf[s, r, ABOVE]) + float(sf[s, r, BELOW])), floor)
                g = group[j]
                shift = 0.0
                if g >= 0:  # in the metric's unit: a front warms every sensor by as much
                    # Each value pulls the common movement at most 6 spreads (a spike hardly
                    # moves it, a front within a few values of each series), or all the way
                    # back towards 0 (from the weather of a brighter hour to a dark one).
                    c = common[g]
                    limit = max(6.0 * both, abs(c))
                    common[g] = c + common_alpha * max(-limit, min(limit, d - c))
                    shift = common[g]
                d -= shift  # from here on the baseline learns the sensor, not the weather
                side = (
                    sf[s, r, ABOVE] if d > 0 else sf[s, r, BELOW]
                )  # skewed noise: a spread each side
                scale = max(1.4826 * float(side), floor)
                z = _unusual(x - shift, r, s, si, sf, scale, warmup_points)
                out[j] = z if raw else calibrated(z)
                drift[r] += beta * (max(-6.0, min(6.0, d / both)) - drift[r])
                out_drift[j] = calibrated(abs(drift[r]) * Z_HALF / drift_half)
                # Huber-clipped from then on: one spike must not drag the baseline
                clipped = max(-3.0 * scale, min(3.0 * scale, d))
            else:  # a weekend hour not yet learnt: the same hour on weekdays, and back
                o = (s + 24) % 48
                if _warm(si, r, o, warmup_days, warmup_points):
                    side_o = sf[o, r, ABOVE] if x > sf[o, r, MEAN] else sf[o, r, BELOW]
                    scale_o = max(1.4826 * float(side_o), floor)
                    z = _unusual(x, r, o, si, sf, scale_o, warmup_points)
                    out[j] = z if raw else calibrated(z)
            a = max(alpha_min, 1.0 / (k + 1))
            sf[s, r, MEAN] = m + a * clipped
            if clipped > 0:
                sf[s, r, ABOVE] += a * (abs(clipped) - sf[s, r, ABOVE])
            else:
                sf[s, r, BELOW] += a * (abs(clipped) - sf[s, r, BELOW])
            si[s, r, N] = k + 1
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
        drift_half: float = 2.0,
        warmup_days: int = 1,
        warmup_points: int = 24,
        rel_floor: float = 0.01,
        common_alpha: float = 0.2,
    ) -> None:
        self.utc_offset_s, self.common_alpha = utc_offset_s, common_alpha
        self.alpha_min, self.beta, self.drift_half = alpha_min, beta, drift_half
        self.warmup_days, self.warmup_points, self.rel_floor = warmup_days, warmup_points, rel_floor
        self.arrays: dict[str, npt.NDArray[Any]] = {}
        self.arrays["index"] = np.full(0, -1, dtype=np.int64)
        self._allocate(0)

    def _allocate(self, rows: int) -> None:
        a, old = self.arrays, dict(self.arrays)
        # by slot, then series: a batch's values share an hour or two, so its series'
        # states at that hour lie side by side (and the hours either side likewise)
        a["slots_i"] = np.zeros((SLOTS, rows, 3), dtype=np.int32)  # N, DAYS, LAST_DAY
        a["slots_f"] = np.zeros((SLOTS, rows, 3), dtype=np.float32)  # MEAN, BELOW, ABOVE
        a["step"] = np.zeros(rows)
        a["last"] = np.zeros(rows)
        a["drift"] = np.zeros(rows)
        a.setdefault("common", np.zeros(GROUPS))  # the weather: kept as series join
        for name, before in old.items():
            if name in ("slots_i", "slots_f"):
                a[name][:, : before.shape[1]] = before
            elif name not in ("index", "common"):
                a[name][: len(before)] = before

    def _rows(self, series: I64) -> I64:
        index = self.arrays["index"]
        if len(series) and int(series.max()) >= len(index):
            grown = np.full(max(int(series.max()) + 1, 2 * len(index)), -1, dtype=np.int64)
            grown[: len(index)] = index
            self.arrays["index"] = index = grown
        new = np.unique(series[index[series] < 0])
        if len(new):
            used = self.series
            index[new] = np.arange(used, used + len(new))
            capacity = len(self.arrays["step"])
            if used + len(new) > capacity:  # by doubling: a new series rarely copies the state
                self._allocate(max(used + len(new), 2 * capacity))
        rows: I64 = index[series]
        return rows

    @property
    def series(self) -> int:
        """How many series have a baseline."""
        return int(np.count_nonzero(self.arrays["index"] >= 0))

    def update(
        self,
        series: I64,
        time: I64,
        value: F64,
        group: I64 | None = None,
        *,
        raw: bool = False,
    ) -> tuple[F64, F64]:
        """Seasonal and drift scores in [0, 1], one each per value (time in Unix µs).

        ``raw``: the seasonal score as the distance in spreads instead (-1 where the hour
        is not learnt yet), for a calibration stage of its own (``processing.values``).

        ``group`` (0 to 63, e.g. the metric) names series that share the weather: both
        scores are measured less what the group's series moved together. None: no group.
        """
        s, v = checked(series, value)
        rows = self._rows(s)
        a = self.arrays
        out, out_drift = np.empty(len(s)), np.empty(len(s))
        groups = np.full(len(s), -1, np.int64) if group is None else group.astype(np.int64)
        if len(groups) and int(groups.max()) >= GROUPS:
            raise ValueError(f"groups must be below {GROUPS}")
        params = np.array(
            [self.alpha_min, self.beta, self.drift_half, self.rel_floor, self.common_alpha]
        )
        _seasonal(
            rows,
            groups,
            np.ascontiguousarray(time, dtype=np.int64),
            v,
            self.utc_offset_s,
            params,
            self.warmup_days,
            self.warmup_points,
            raw,
            a["slots_i"],
            a["slots_f"],
            a["step"],
            a["last"],
            a["drift"],
            a["common"],
            out,
            out_drift,
        )
        return out, out_drift
