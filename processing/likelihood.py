"""From raw surprise to a score that means the same on every series: an anomaly likelihood.

A raw surprise (distance from the expected value in spreads) means different things on
different series: heavy-tailed noise reaches 6 spreads every day, Gaussian noise hardly
ever. So each series' surprise is judged against the distribution of that series' own
recent surprises, as a tail probability:

- a threshold ``u`` near the 0.95 quantile of its recent surprises, from the EWMA mean
  and variance of their logs (weight ``tail_alpha``: it forgets an anomaly as fast as it
  learnt it, where a tracked quantile climbs 19 times faster than it comes down), and the
  share of surprises actually above it (an EWMA too);
- the excesses over ``u`` are fitted with a generalised Pareto tail by moments (mean and
  mean square of the excesses, EWMAs of weight ``tail_alpha``; the shape is clipped to
  [0, 0.45]: from an exponential tail to a heavy one, and shrunk towards 0 while fewer
  than about 50 exceedances back it), an excess counted at most 10 mean excesses so one
  huge spike does not flatten the tail after it;
- the tail probability of a surprise ``z`` above ``u`` is ``share * S(z - u)``, below it
  ``1 - (1 - share) z / u`` (``u`` and the mean excess floored at 1 and 0.3 spreads when judging: a
  series predicted almost perfectly does not make a small step an anomaly);
- the same is done for the short mean (about the last 10) of the signed surprises, in its
  own long-run spread: a shift of level or spread too small for any single value shows
  there, and its fitted tail is as fat as that series' runs of surprises make it;
- the smaller of the two probabilities, doubled (either test may fire), is the value's
  tail probability; the score is a logistic in decades of it, 0.5 at
  ``10^-half_log_p`` with ``slope_log_p`` per decade (processing.config: 0.5 at 10^-7,
  0.9 at 10^-11.4).

Healthy noise of any shape then gives about the same share of small tail probabilities,
whatever its raw surprises are, and a score of 0.9 stands for a tiny probability: on
healthy streams far fewer than 0.1 % of points reach it. A surprise of NaN (not
judged yet) scores 0 and teaches nothing; until a series has judged ``warmup`` surprises
its calibration rests mostly on priors, and it alerts only three decades further out.
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

LOG_MEAN0, LOG_VAR0, EXCESS0 = -0.8, 1.2, 0.45
"""Priors (Gaussian noise in robust spreads: ``u`` about 2.7), worth ``PRIOR_WEIGHT``
values (exceedances, for the excess)."""
PRIOR_WEIGHT = 30.0
LOG_SHIFT = 0.05
"""Added before the log: a surprise of 0 (inside a cycle's band) is fine."""
Z_U = 1.645
"""``u`` = exp(mean + Z_U sd) of the log surprises: the 0.95 quantile were they lognormal;
the share actually above it is tracked and used as such."""
SHORT_ALPHA = 0.1
"""Weight of the short mean of signed surprises (about the last 10 values)."""
SHORT_VAR0, SHORT_VAR_MIN = 0.1, 0.01
POINT, SHORT_FIT, SHORT, SHORT_VAR = 0, 7, 14, 15
"""Fields of a series' state: the tail fit of single surprises (mean and variance of the
log surprise, the share above ``u``, mean excess, its square, exceedances, ``u``), the same for
the short mean, the short mean and its variance."""
FIELDS = 16
"""Prior and floor of the short mean's variance (white noise of unit spread: 0.05)."""
YOUNG_DECADES = 3.0
"""Decades of probability added to ``half_log_p`` while a series has judged fewer than
``warmup`` surprises."""
U_MIN, EXCESS_MIN = 1.0, 0.3
"""Floors of the quantile and of the mean excess when judging (not when learning): at
least about 3.6 spreads to reach 0.5."""


@numba.njit(cache=True, nogil=True)
def _threshold(f: F64, r: int, c: int) -> float:
    """The fit's threshold ``u``: about its 0.95 quantile, from the log surprises' mean and
    spread (which forget as fast as they learn, unlike a tracked quantile)."""
    return float(math.exp(f[r, c] + Z_U * math.sqrt(max(f[r, c + 1], 0.0)))) - LOG_SHIFT


@numba.njit(cache=True, nogil=True)
def _tail(x: float, f: F64, r: int, c: int) -> float:
    """Tail probability of ``x`` under the fit in ``f[r, c : c + 7]``."""
    u, rate = float(f[r, c + 6]), float(f[r, c + 2])
    e1, e2, seen = float(f[r, c + 3]), float(f[r, c + 4]), float(f[r, c + 5])
    # a series predicted almost perfectly has tiny surprises: a step of a few of its
    # spreads (floored at its resolution) is no anomaly however rare it is there
    ue, e1e = max(u, U_MIN), max(e1, EXCESS_MIN)
    if x <= ue:
        return 1.0 - (1.0 - rate) * x / ue
    y = x - ue
    var = max(e2 - e1 * e1, 1e-12)
    # the shape from moments is unsteady on few exceedances: shrunk towards an exponential
    # tail until some 50 back it
    xi = min(0.45, max(0.0, 0.5 * (1.0 - e1 * e1 / var))) * seen / (seen + 50.0)
    sigma = max(e1e * (1.0 - xi), 1e-12)
    if xi > 1e-6:
        return float(rate * (1.0 + xi * y / sigma) ** (-1.0 / xi))
    return float(rate * math.exp(-y / sigma))


@numba.njit(cache=True, nogil=True)
def _learn(x: float, f: F64, r: int, c: int, k: int, tail_alpha: float) -> None:
    """Fold ``x`` into the fit in ``f[r, c : c + 6]``: mean and variance of the log
    surprise, the share above ``u``, mean and mean square of the excesses, their count."""
    u, e1 = float(f[r, c + 6]), float(f[r, c + 3])
    a = max(tail_alpha, 1.0 / (k + PRIOR_WEIGHT))
    # one huge surprise moves neither the threshold nor the tail much
    capped = min(x, max(u, 0.0) + 10.0 * e1)
    lx = math.log(capped + LOG_SHIFT)
    d = lx - f[r, c]
    f[r, c] += a * d
    f[r, c + 1] += a * (d * d - f[r, c + 1])
    above = x > u
    f[r, c + 2] += a * ((1.0 if above else 0.0) - f[r, c + 2])
    if above:
        y = capped - u
        ae = max(tail_alpha, 1.0 / (f[r, c + 5] + PRIOR_WEIGHT))
        f[r, c + 3] += ae * (y - e1)
        f[r, c + 4] += ae * (y * y - f[r, c + 4])
        f[r, c + 5] += 1.0
    f[r, c + 6] = _threshold(f, r, c)  # kept: judging and learning read it


@numba.njit(cache=True, nogil=True)
def _likelihood(
    row: I64,
    z: F64,
    p: F64,  # quantile, tail_alpha, half_log_p, slope_log_p
    warmup: int,
    n: I64,
    f: F64,  # (rows, FIELDS)
    out: F64,
    tail: F64,
) -> None:
    q, tail_alpha, half, slope = p[0], p[1], p[2], p[3]
    for j in range(row.shape[0]):
        r, signed = row[j], z[j]
        if math.isnan(signed):
            out[j], tail[j] = 0.0, 1.0
            continue
        x = abs(signed)
        k = n[r]
        if k == 0:
            for c in (POINT, SHORT_FIT):
                f[r, c], f[r, c + 1], f[r, c + 2] = LOG_MEAN0, LOG_VAR0, 1.0 - q
                f[r, c + 3], f[r, c + 4], f[r, c + 5] = EXCESS0, 2.0 * EXCESS0 * EXCESS0, 0.0
                f[r, c + 6] = _threshold(f, r, c)
            f[r, SHORT], f[r, SHORT_VAR] = 0.0, SHORT_VAR0
        # the recent surprises together: a shift of level or spread too small for any one
        # value is the mean of the last few signed surprises, far out in its own spread
        short = f[r, SHORT] + SHORT_ALPHA * (max(-6.0, min(6.0, signed)) - f[r, SHORT])
        zs = abs(short) / math.sqrt(max(f[r, SHORT_VAR], SHORT_VAR_MIN))
        # each judged against its own recent distribution (the short mean's tails are fat
        # where surprises come in runs: the weather, a slow sensor); either test (Bonferroni)
        pr = 2.0 * min(_tail(x, f, r, POINT), _tail(zs, f, r, SHORT_FIT))
        pr = max(min(pr, 1.0), 1e-300)
        tail[j] = pr
        # a young calibration rests on its priors: it alerts only far out in the tail
        h = half if k >= warmup else half + YOUNG_DECADES
        out[j] = 1.0 / (1.0 + math.exp(-(-math.log10(pr) - h) * slope))
        _learn(x, f, r, POINT, k, tail_alpha)
        _learn(zs, f, r, SHORT_FIT, k, tail_alpha)
        f[r, SHORT] = short
        v = f[r, SHORT_VAR]
        f[r, SHORT_VAR] = v + max(tail_alpha / 2, 1.0 / (k + 1)) * (
            min(short * short, 25.0 * v) - v
        )
        n[r] = k + 1


class Likelihood:
    """Scores in [0, 1] from raw surprises, against each series' own recent surprises."""

    def __init__(
        self,
        *,
        quantile: float = 0.95,
        tail_alpha: float = 0.01,
        half_log_p: float = 5.0,
        slope_log_p: float = 2.2,
        warmup: int = 60,
    ) -> None:
        if not 0 < quantile < 1:
            raise ValueError("quantile must be in (0, 1)")
        self.quantile, self.tail_alpha, self.warmup = quantile, tail_alpha, warmup
        self.half_log_p, self.slope_log_p = half_log_p, slope_log_p
        self.arrays: dict[str, npt.NDArray[Any]] = {}
        self._allocate(0)

    def _allocate(self, rows: int) -> None:
        old, a = dict(self.arrays), self.arrays
        a["n"] = np.zeros(rows, dtype=np.int64)
        a["f"] = np.zeros((rows, FIELDS))
        for name, before in old.items():
            a[name][: len(before)] = before

    def update(self, series: I64, surprise: F64) -> tuple[F64, F64]:
        """Scores and tail probabilities, one each per signed surprise (NaN: not judged)."""
        s = np.ascontiguousarray(series, dtype=np.int64)
        if len(s) and int(s.max()) >= len(self.arrays["n"]):
            self._allocate(max(int(s.max()) + 1, 2 * len(self.arrays["n"])))
        a = self.arrays
        out, tail = np.empty(len(s)), np.empty(len(s))
        params = np.array([self.quantile, self.tail_alpha, self.half_log_p, self.slope_log_p])
        _likelihood(
            s,
            np.ascontiguousarray(surprise, dtype=np.float64),
            params,
            self.warmup,
            a["n"],
            a["f"],
            out,
            tail,
        )
        return out, tail
