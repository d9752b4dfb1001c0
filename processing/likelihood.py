"""From raw surprise to a score that means the same on every series: an anomaly likelihood.

A raw surprise (distance from the expected value in spreads) means different things on
different series: heavy-tailed noise reaches 6 spreads every day, Gaussian noise hardly
ever. So each series' surprise is judged against the distribution of that series' own
recent surprises, as a tail probability:

- the ``quantile`` (0.95) of its recent surprises, ``u``, is tracked by stochastic
  approximation (up ``q`` steps for a value above, down ``1 - q`` for one below: it rests
  where a share ``1 - q`` lies above);
- the excesses over ``u`` are fitted with a generalised Pareto tail by moments (mean and
  mean square of the excesses, EWMAs of weight ``tail_alpha``; the shape is clipped to
  [0, 0.45]: from an exponential tail to a heavy one), an excess counted at most 10 mean
  excesses so one huge spike does not flatten the tail after it;
- the tail probability of a surprise ``z`` above ``u`` is ``(1 - q) * S(z - u)``, below it
  ``1 - q z / u``; the score is a logistic in decades of that probability, 0.5 at
  ``10^-half_log_p``, 0.9 one decade (``slope_log_p``) further.

Healthy noise of any shape then gives about the same share of small tail probabilities,
whatever its raw surprises are, and a score of 0.9 stands for a probability of about
10^-6: on healthy streams far fewer than 0.1 % of points reach it. A surprise of -1 (not
judged yet) scores 0 and teaches nothing; a series scores once it has judged ``warmup``
surprises.
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

U0, MEAN0, EXCESS0 = 1.7, 0.7, 0.45
"""Priors (Gaussian noise in robust spreads), worth about 10 exceedances."""
SHORT_ALPHA = 0.1
"""Weight of the short mean of signed surprises (about the last 10 values)."""
SHORT_VAR0, SHORT_VAR_MIN = 0.1, 0.01
LAPLACE = 1.0
"""Prior and floor of the short mean's variance (white noise of unit spread: 0.05)."""
U_MIN, EXCESS_MIN = 1.0, 0.3
"""Floors of the quantile and of the mean excess when judging (not when learning): at
least about 3.6 spreads to reach 0.5."""


@numba.njit(cache=True, nogil=True)
def _likelihood(
    row: I64,
    z: F64,
    p: F64,  # quantile, tail_alpha, half_log_p, slope_log_p
    warmup: int,
    n: I64,
    exceeded: I64,
    f: F64,  # (rows, 6): u, mean surprise, mean excess, mean squared excess, short, its var
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
            f[r, 0], f[r, 1], f[r, 2], f[r, 3] = U0, MEAN0, EXCESS0, 2.0 * EXCESS0 * EXCESS0
            f[r, 4], f[r, 5] = 0.0, SHORT_VAR0
        u, mean, e1, e2 = f[r, 0], f[r, 1], f[r, 2], f[r, 3]
        # the recent surprises together: a shift of level or spread too small for any one
        # value is the mean of the last few signed surprises, far out in its own spread
        short = f[r, 4] + SHORT_ALPHA * (max(-6.0, min(6.0, signed)) - f[r, 4])
        short_var = f[r, 5]
        # a series predicted almost perfectly has tiny surprises: a step of a few of its
        # spreads (floored at its resolution) is no anomaly however rare it is there
        ue, e1e = max(u, U_MIN), max(e1, EXCESS_MIN)
        if x > ue:
            y = x - ue
            var = max(e2 - e1 * e1, 1e-12)
            xi = min(0.45, max(0.0, 0.5 * (1.0 - e1 * e1 / var)))
            sigma = max(e1e * (1.0 - xi), 1e-12)
            if xi > 1e-6:
                pr = (1.0 - q) * (1.0 + xi * y / sigma) ** (-1.0 / xi)
            else:
                pr = (1.0 - q) * math.exp(-y / sigma)
        else:
            pr = 1.0 - q * x / ue
        zs = abs(short) / math.sqrt(max(short_var, SHORT_VAR_MIN))
        # its tail taken as a Laplace's, not a Gaussian's: surprises of a real stream come
        # in runs (the weather, a slow sensor), which fattens the short mean's tails
        pr = min(pr, math.exp(-LAPLACE * zs)) * 2.0  # either test (Bonferroni)
        pr = max(min(pr, 1.0), 1e-300)
        tail[j] = pr
        if k >= warmup:
            out[j] = 1.0 / (1.0 + math.exp(-(-math.log10(pr) - half) * slope))
        else:
            out[j] = 0.0
        # learn
        mean += max(tail_alpha, 1.0 / (k + 1)) * (x - mean)
        eta = max(mean, 1e-3) * max(0.05, 0.5 / (1.0 + 0.05 * k))
        if x > u:
            y = min(x - u, 10.0 * e1)
            ae = max(tail_alpha, 1.0 / (exceeded[r] + 11))
            e1 += ae * (y - e1)
            e2 += ae * (y * y - e2)
            exceeded[r] += 1
            u += eta * q
        else:
            u = max(0.0, u - eta * (1.0 - q))
        f[r, 0], f[r, 1], f[r, 2], f[r, 3] = u, mean, e1, e2
        f[r, 4] = short
        f[r, 5] = short_var + max(tail_alpha / 2, 1.0 / (k + 1)) * (
            min(short * short, 25.0 * short_var) - short_var
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
        a["exceeded"] = np.zeros(rows, dtype=np.int64)
        a["f"] = np.zeros((rows, 6))
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
            a["exceeded"],
            a["f"],
            out,
            tail,
        )
        return out, tail
