"""More device checks: a cycling (flickering) lamp, a dead traffic detector, physical range.

- ``Flicker``: a lamp that switches on and off again and again. Each switch adds one to a
  count that decays with a time constant ``tau_s`` (1 h); a healthy lamp switches twice
  a day, so a count of ``half`` (4) switches within about an hour scores 0.5.
- ``DeadDetector``: a traffic detector reporting nothing but zeros (no speed, no vehicles,
  no occupancy) for ``persist_s`` (15 min). A quiet road at night still has a speed on
  the vehicles that pass and some occupancy; all three at zero that long is a dead loop.
- ``range_scores``: a value outside its metric's physical range scores 0.75, up to 1 when
  it is a tenth of the range outside (the catalog's bounds are passed in: ``processing``
  does not know the catalog).
"""

from __future__ import annotations

import math

import numba
import numpy as np
import numpy.typing as npt

from processing.rules import persisting
from processing.state import grow

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


@numba.njit(cache=True, nogil=True)
def _flicker(
    device: I64,
    time: I64,
    lit: npt.NDArray[np.bool_],
    tau_us: float,
    half: float,
    state: I64,
    last_t: I64,
    count: F64,
    out: F64,
) -> None:
    for j in range(device.shape[0]):
        d, t, now = device[j], time[j], 1 if lit[j] else 0
        if state[d] < 0:  # first reading of this lamp
            state[d], last_t[d], out[j] = now, t, 0.0
            continue
        if t > last_t[d]:
            count[d] *= math.exp(-(t - last_t[d]) / tau_us)
            last_t[d] = t
        if now != state[d]:
            count[d] += 1.0
            state[d] = now
        out[j] = 1.0 / (1.0 + math.exp(-(count[d] - half) * 2.0))


class Flicker:
    """A lamp switching on and off over and over: 0.5 at ``half`` switches in ~``tau_s``."""

    def __init__(self, *, tau_s: float = 3_600, half: float = 4.0, devices: int = 1024) -> None:
        self.tau_s, self.half = tau_s, half
        self.state = np.full(devices, -1, dtype=np.int64)
        self.last_t = np.zeros(devices, dtype=np.int64)
        self.count = np.zeros(devices)

    def update(self, device: I64, time: I64, lit: npt.NDArray[np.bool_]) -> F64:
        """A score per reading; a device's readings in time order (µs)."""
        d = np.ascontiguousarray(device, dtype=np.int64)
        need = int(d.max()) + 1 if len(d) else 0
        self.state = grow(self.state, need, -1)
        self.last_t = grow(self.last_t, need, 0)
        self.count = grow(self.count, need, 0.0)
        out = np.empty(len(d))
        _flicker(
            d,
            np.ascontiguousarray(time, dtype=np.int64),
            np.ascontiguousarray(lit, dtype=np.bool_),
            self.tau_s * 1e6,
            self.half,
            self.state,
            self.last_t,
            self.count,
            out,
        )
        return out


class DeadDetector:
    """A traffic detector whose speed, volume and occupancy all read 0 for ``persist_s``."""

    def __init__(self, *, persist_s: float = 900, devices: int = 1024) -> None:
        self.persist_s = persist_s
        self.since = np.full(devices, -1, dtype=np.int64)

    def update(self, device: I64, time: I64, speed: F64, volume: F64, occupancy: F64) -> F64:
        """A score per reading (NaN where the reading lacks a metric; not all may lack)."""
        d = np.ascontiguousarray(device, dtype=np.int64)
        self.since = grow(self.since, int(d.max()) + 1 if len(d) else 0, -1)
        cols = np.vstack([speed, volume, occupancy])
        with np.errstate(invalid="ignore"):
            zeros = np.where(np.isnan(cols), True, np.abs(cols) < 0.5)
        zero = np.asarray(zeros.all(axis=0) & ~np.isnan(cols).all(axis=0), dtype=np.bool_)
        out = np.empty(len(d))
        t = np.ascontiguousarray(time, dtype=np.int64)
        persisting(d, t, zero, self.since, int(self.persist_s * 1e6), out)
        return out


def range_scores(metric: I64, value: F64, low: F64, high: F64) -> F64:
    """0 inside ``[low[metric], high[metric]]``; 0.75 just outside, 1 a tenth of the range out."""
    lo, hi = low[metric], high[metric]
    # values near ±1e308 overflow the division: the share is clipped to 1 all the same
    with np.errstate(invalid="ignore", over="ignore"):
        excess = np.maximum(lo - value, value - hi)
        share = np.clip(excess / np.maximum(hi - lo, 1e-12) / 0.1, 0.0, 1.0)
    scores: F64 = np.where(excess > 0, 0.75 + 0.25 * share, 0.0)
    return scores
