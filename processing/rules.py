"""Detectors that know the devices: silence, streetlights, traffic detectors.

``Dropout`` watches time rather than values: a series silent for several times its usual
interval. The domain rules score one reading of a device at a time, from the metrics of
that reading together (NaN where the reading lacks a metric):

- streetlight *lamp out*: dark at the lamp's photocell for ``persist_s`` (15 min), yet
  the lamp draws no power (the wait lets a healthy lamp switch on at dusk);
- streetlight *day-burner*: bright daylight, yet the lamp is lit;
- streetlight *power out of band*: lit, but drawing far from its own learned watts per
  dimming percent (a failing driver, a wrong lamp);
- traffic *incident*: speed collapses below half its recent level while occupancy rises.

Each rule gives a score in [0, 1] on the same scale as the other detectors.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import numpy.typing as npt

from processing.state import grow

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

DARK_LUX = 10.0
"""Below this the photocell reads night (civil twilight is a few lux)."""
DAYLIGHT_LUX = 1_000.0
"""Above this no streetlight should be lit (overcast daylight is thousands of lux)."""
LIT_W = 5.0
"""Above this a lamp draws real power; standby electronics draw less."""


@numba.njit(cache=True, nogil=True)
def _dropout(now: int, last: I64, gap: F64, n: I64, factor: float, warmup: int, out: F64) -> None:
    for s in range(last.shape[0]):
        out[s] = 0.0
        if n[s] >= warmup and gap[s] > 0:
            ratio = (now - last[s]) / gap[s]
            out[s] = 1.0 / (1.0 + math.exp(-(ratio - factor) * 1.5))


@numba.njit(cache=True, nogil=True)
def _seen(
    series: I64, time: I64, arrived: I64, last: I64, event: I64, gap: F64, n: I64, alpha: float
) -> None:
    for j in range(series.shape[0]):
        s, t = series[j], time[j]
        if n[s] > 0 and t > event[s]:  # the usual interval, in event time
            g = t - event[s]
            gap[s] = g if n[s] == 1 else gap[s] + alpha * (g - gap[s])
        if n[s] == 0 or t > event[s]:
            event[s] = t
        if n[s] == 0 or arrived[j] > last[s]:
            last[s] = arrived[j]
        n[s] += 1


class Dropout:
    """Series silent for ``factor`` times their usual interval score 0.5 (more, longer)."""

    def __init__(
        self, *, factor: float = 5.0, warmup: int = 5, alpha: float = 0.1, series: int = 1024
    ) -> None:
        self.factor, self.warmup, self.alpha = factor, warmup, alpha
        self._last = np.zeros(series, dtype=np.int64)
        self._event = np.zeros(series, dtype=np.int64)
        self._gap = np.zeros(series, dtype=np.float64)
        self._n = np.zeros(series, dtype=np.int64)

    def update(self, series: I64, time: I64, arrived: I64 | None = None) -> None:
        """Note when each series was heard (any order; the newest time counts).

        The usual interval is learnt from event ``time``; silence is judged on ``arrived``
        (default: ``time``), so a burst of replayed readings is no new usual interval.
        """
        s = np.ascontiguousarray(series, dtype=np.int64)
        if len(s):
            need = int(s.max()) + 1
            self._last, self._event = grow(self._last, need, 0), grow(self._event, need, 0)
            self._gap, self._n = grow(self._gap, need, 0.0), grow(self._n, need, 0)
        t = np.ascontiguousarray(time, dtype=np.int64)
        _seen(
            s,
            t,
            t if arrived is None else np.ascontiguousarray(arrived, dtype=np.int64),
            self._last,
            self._event,
            self._gap,
            self._n,
            self.alpha,
        )

    def heard(self) -> npt.NDArray[np.bool_]:
        """Which series ids have been heard at all."""
        heard: npt.NDArray[np.bool_] = self._n > 0
        return heard

    def last_heard(self) -> I64:
        """When each series was last heard (its newest time)."""
        return self._last

    def scores(self, now: int) -> F64:
        """A score per series id for how overdue it is at ``now``."""
        out = np.empty(len(self._n))
        _dropout(now, self._last, self._gap, self._n, self.factor, self.warmup, out)
        return out


def _logistic(x: F64, half: float, width: float) -> F64:
    with np.errstate(over="ignore"):
        scores: F64 = 1.0 / (1.0 + np.exp(-(x - half) / width))
    return scores


@numba.njit(cache=True, nogil=True)
def _band(
    device: I64,
    lit: npt.NDArray[np.bool_],
    watts_per_pct: F64,
    rating: F64,
    n: I64,
    warmup: int,
    alpha: float,
    out: F64,
) -> None:
    for j in range(device.shape[0]):
        out[j] = math.nan
        if not lit[j] or not math.isfinite(watts_per_pct[j]):
            continue
        d, r = device[j], watts_per_pct[j]
        if n[d] >= warmup:
            out[j] = abs(r / rating[d] - 1.0)
        # learn the lamp's own rating, but not from readings far out of band
        if n[d] < warmup or out[j] < 0.2:
            rating[d] = r if n[d] == 0 else rating[d] + alpha * (r - rating[d])
            n[d] += 1


@numba.njit(cache=True, nogil=True)
def persisting(
    device: I64, time: I64, condition: npt.NDArray[np.bool_], since: I64, persist_us: int, out: F64
) -> None:
    """1 where ``condition`` has held for a device for ``persist_us``; ``since`` is state."""
    for j in range(device.shape[0]):
        d = device[j]
        if not condition[j]:
            since[d] = -1
            out[j] = 0.0
            continue
        if since[d] < 0:
            since[d] = time[j]
        out[j] = 1.0 if time[j] - since[d] >= persist_us else 0.0


class StreetlightRules:
    """Lamp out, day-burner and power out of band, one score each per reading."""

    def __init__(
        self, *, warmup: int = 10, alpha: float = 0.05, persist_s: float = 900, devices: int = 1024
    ) -> None:
        self.warmup, self.alpha, self.persist_s = warmup, alpha, persist_s
        self._rating = np.zeros(devices)
        self._n = np.zeros(devices, dtype=np.int64)
        self._dark_since = np.full(devices, -1, dtype=np.int64)

    def update(
        self, device: I64, time: I64, power_w: F64, dim_pct: F64, ambient_lux: F64
    ) -> dict[str, F64]:
        """Scores by rule: ``lamp_out``, ``day_burner``, ``power_out_of_band``.

        A device's readings must come in time order (``time`` in µs).
        """
        d = np.ascontiguousarray(device, dtype=np.int64)
        if len(d) and int(d.max()) >= len(self._n):
            grow = max(int(d.max()) + 1, 2 * len(self._n)) - len(self._n)
            self._rating = np.r_[self._rating, np.zeros(grow)]
            self._n = np.r_[self._n, np.zeros(grow, np.int64)]
            self._dark_since = np.r_[self._dark_since, np.full(grow, -1, np.int64)]
        with np.errstate(invalid="ignore", divide="ignore"):
            dark = ambient_lux < DARK_LUX
            lit = power_w > LIT_W
            day_burner = np.where(
                ambient_lux > DAYLIGHT_LUX, _logistic(power_w, 2 * LIT_W, 2.0), 0.0
            )
            per_pct = power_w / dim_pct
        lamp_out = np.empty(len(d))
        persisting(
            d,
            np.ascontiguousarray(time, dtype=np.int64),
            dark & ~lit,
            self._dark_since,
            int(self.persist_s * 1e6),
            lamp_out,
        )
        off_band = np.empty(len(d))
        _band(
            d,
            lit & (dim_pct > 0),
            np.ascontiguousarray(per_pct),
            self._rating,
            self._n,
            self.warmup,
            self.alpha,
            off_band,
        )
        band = np.where(np.isnan(off_band), 0.0, _logistic(np.nan_to_num(off_band), 0.3, 0.05))
        return {"lamp_out": lamp_out, "day_burner": day_burner, "power_out_of_band": band}


@numba.njit(cache=True, nogil=True)
def _incident(
    device: I64,
    speed: F64,
    occupancy: F64,
    level: F64,
    occ_level: F64,
    n: I64,
    warmup: int,
    alpha: float,
    out: F64,
) -> None:
    for j in range(device.shape[0]):
        d, v, o = device[j], speed[j], occupancy[j]
        out[j] = 0.0
        if not (math.isfinite(v) and math.isfinite(o)):
            continue
        if n[d] >= warmup and level[d] > 0:
            drop = 1.0 - v / level[d]  # share of the usual speed lost
            rise = o - occ_level[d]  # occupancy points gained
            if drop > 0 and rise > 0:
                out[j] = 1.0 / (1.0 + math.exp(-(min(drop / 0.5, rise / 20.0) - 1.0) * 6.0))
        if n[d] < warmup or out[j] < 0.5:  # learn the road's usual state, not the incident
            level[d] = v if n[d] == 0 else level[d] + alpha * (v - level[d])
            occ_level[d] = o if n[d] == 0 else occ_level[d] + alpha * (o - occ_level[d])
            n[d] += 1


class TrafficRules:
    """Incident: speed below half its usual level while occupancy is 20 points up."""

    def __init__(self, *, warmup: int = 10, alpha: float = 0.1, devices: int = 1024) -> None:
        self.warmup, self.alpha = warmup, alpha
        self._level = np.zeros(devices)
        self._occ = np.zeros(devices)
        self._n = np.zeros(devices, dtype=np.int64)

    def update(self, device: I64, speed_kmh: F64, occupancy_pct: F64) -> F64:
        d = np.ascontiguousarray(device, dtype=np.int64)
        if len(d) and int(d.max()) >= len(self._n):
            grow = max(int(d.max()) + 1, 2 * len(self._n)) - len(self._n)
            self._level = np.r_[self._level, np.zeros(grow)]
            self._occ = np.r_[self._occ, np.zeros(grow)]
            self._n = np.r_[self._n, np.zeros(grow, np.int64)]
        out = np.empty(len(d))
        _incident(
            d,
            np.ascontiguousarray(speed_kmh, dtype=np.float64),
            np.ascontiguousarray(occupancy_pct, dtype=np.float64),
            self._level,
            self._occ,
            self._n,
            self.warmup,
            self.alpha,
            out,
        )
        return out


@numba.njit(cache=True, nogil=True)
def _pivot(
    reading: npt.NDArray[np.int32],
    metric: npt.NDArray[np.int16],
    time: I64,
    device: I64,
    value: F64,
    column: I64,
    r_time: I64,
    r_device: I64,
    cols: F64,
    present: npt.NDArray[np.bool_],
) -> None:
    for j in range(reading.shape[0]):
        c = column[metric[j]]
        if c < 0:
            continue
        r = reading[j]
        r_time[r], r_device[r], present[r] = time[j], device[j], True
        cols[c, r] = value[j]


def pivot_readings(
    reading: npt.NDArray[np.int32],
    metric: npt.NDArray[np.int16],
    time: I64,
    device: I64,
    value: F64,
    column: I64,
) -> tuple[I64, I64, F64]:
    """Values back into readings, for the rules: (device, time, columns) per reading.

    ``column[metric]`` is the column of a metric the rules read (-1: not read); a reading
    lacking a metric has NaN in its column. Readings that have none of the columns are
    left out; the rest come in time order (stable).
    """
    n = int(reading.max()) + 1 if len(reading) else 0
    r_time, r_device = np.empty(n, np.int64), np.empty(n, np.int64)
    cols = np.full((int(column.max()) + 1, n), np.nan)
    present = np.zeros(n, dtype=np.bool_)
    _pivot(reading, metric, time, device, value, column, r_time, r_device, cols, present)
    rows = np.flatnonzero(present)
    times = r_time[rows]
    if len(rows) > 1 and not (times[1:] >= times[:-1]).all():
        rows = rows[np.argsort(times, kind="stable")]
    return r_device[rows], r_time[rows], cols[:, rows]
