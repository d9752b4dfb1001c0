"""The value detectors of a series, as one stack: what the ingester and ``citytel detect`` run.

For each value, in order:

1. its surprise against the series' learned cycle (``processing.cycles``: none, daily or
   weekly, chosen per series from its own history);
2. for metrics the catalog gives a daily rhythm (``grid``), also against the usual level
   at this hour of a weekday or weekend day less the group's common movement (the
   weather: ``processing.seasonal``); the value must be unusual against both, so the
   smaller surprise is kept;
3. the surprise becomes a tail probability against the series' own recent surprises, and
   that a score (``processing.likelihood``): the **deviation** score;
4. the grid's slow **drift** score, and the **flatline** score (one value held too long).

Every parameter comes from one ``ValueConfig`` (``processing.config.VALUES``). Series are
dense rows (ids from 0, as the ingester's slots).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from processing.config import VALUES, ValueConfig
from processing.cycles import Cycles
from processing.detectors import Flatline
from processing.episodes import Episodes
from processing.likelihood import Likelihood
from processing.seasonal import Seasonal

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]

GRID = 3
"""``Scored.model`` of a value whose surprise came from the hour x weekday grid (after
``cycles.FLAT``, ``DAILY``, ``WEEKLY``)."""
MODELS = ("level", "daily", "weekly", "hour grid")


@dataclass(frozen=True, slots=True)
class Scored:
    """One entry per value."""

    deviation: F64  # score in [0, 1]
    drift: F64  # score in [0, 1] (0 off the grid)
    flatline: F64  # score in [0, 1]
    expected: F64  # the baseline the value was compared with
    model: I64  # which baseline: cycles.FLAT, DAILY, WEEKLY or GRID
    surprise: F64  # raw surprise in spreads, signed (NaN: not judged yet)
    tail: F64  # its tail probability among the series' recent surprises


class ValueDetectors:
    """Deviation (learned cycle, grid, calibration), drift and flatline per series."""

    def __init__(self, config: ValueConfig = VALUES, *, utc_offset_s: int = 0) -> None:
        c = self.config = config
        self.cycles = Cycles(
            alpha=c.alpha,
            warmup=c.warmup,
            rel_floor=c.rel_floor,
            cycle_days=c.cycle_days,
            gain=c.cycle_gain,
            memory_days=c.cycle_memory_days,
            utc_offset_s=utc_offset_s,
        )
        self.grid = Seasonal(
            rel_floor=c.rel_floor, warmup_days=c.grid_warmup_days, utc_offset_s=utc_offset_s
        )
        self.likelihood = Likelihood(
            quantile=c.quantile,
            tail_alpha=c.tail_alpha,
            half_log_p=c.half_log_p,
            slope_log_p=c.slope_log_p,
            warmup=c.warmup // 2,  # a young calibration: only the far tail alerts
        )
        self.flatline = Flatline(run_half=c.run_half, series=1 << 12)

    @property
    def utc_offset_s(self) -> int:
        return self.cycles.utc_offset_s

    @utc_offset_s.setter
    def utc_offset_s(self, offset: int) -> None:
        self.cycles.utc_offset_s = self.grid.utc_offset_s = offset

    def update(
        self,
        series: I64,
        time: I64,
        value: F64,
        *,
        grid: B | None = None,
        group: I64 | None = None,
    ) -> Scored:
        """Scores of each value, from the values of its series before it.

        ``grid`` marks the values also judged against the hour x weekday grid, ``group``
        their grid groups (series that share the weather, e.g. the metric).
        """
        surprise, expected, model = self.cycles.update(series, time, value)
        drift = np.zeros(len(series))
        if grid is not None and grid.any():
            i = np.flatnonzero(grid)
            g = None if group is None else group[i]
            usual, drift[i] = self.grid.update(series[i], time[i], value[i], g, raw=True)
            mine = surprise[i]
            usual = np.where(usual < 0, np.nan, usual)  # an unlearnt hour: no judgement yet
            with np.errstate(invalid="ignore"):
                take = ~(usual >= np.abs(mine))  # the smaller surprise, or none
            j = i[take]
            surprise[j] = np.copysign(usual[take], np.where(np.isnan(mine[take]), 1.0, mine[take]))
            model[j] = GRID  # (the expected value stays the cycle's: the grid's is a band)
        deviation, tail = self.likelihood.update(series, surprise)
        flat = self.flatline.update(series, time, value)
        return Scored(deviation, drift, flat, expected, model, surprise, tail)


def value_episodes(
    config: ValueConfig = VALUES, *, open_at: float | None = None, close_below: float | None = None
) -> Episodes:
    """An episode tracker for a value detector, with the configuration's alert discipline
    (``open_at`` and ``close_below`` may be given: a backtest sweeping its threshold)."""
    return Episodes(
        open_at=config.open_at if open_at is None else open_at,
        close_below=config.close_below if close_below is None else close_below,
        close_after=config.close_after,
        settle=config.settle,
    )
