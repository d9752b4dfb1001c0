"""The one configuration of the value detectors, for the live ingester and ``citytel detect``.

``ingest.detect.Detection`` and ``citytel detect`` both build their value detectors
(``processing.values.ValueDetectors``) and episode trackers from ``VALUES``: a parameter
changed here changes both, and nowhere else holds one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ValueConfig:
    """Parameters of the value detectors and of their alerts (episodes)."""

    # the recent level (the "no cycle" model) and the series' resolution floor
    alpha: float = 0.01
    """EWMA weight of the recent level: 120 points to warm up, a slow, steady spread (with
    0.05, Gaussian noise crossed 0.5 at about 3.7 spreads once an hour in a 42-device city)."""
    warmup: int = 120
    """Points a series must have seen before it scores."""
    rel_floor: float = 0.001
    """Smallest spread as a share of the level: the resolution does the flooring, the share
    only guards zeros (a share of the level is a poor floor for air pressure near 1,013 hPa)."""
    # learned cycles (processing.cycles)
    cycle_days: int = 2
    """Earlier days (weeks, for the weekly cycle) a time-of-day bin must have been seen on
    before the cycle model uses it."""
    cycle_gain: float = 0.7
    """A cycle is taken as the series' model when its error is below this share of the
    simpler model's (daily vs no cycle, weekly vs daily)."""
    cycle_memory_days: float = 4.0
    """A time-of-day bin's level averages about this many of its days."""
    # the hour x weekday grid with the weather correction (catalog metrics with a rhythm)
    grid_warmup_days: int = 2
    # calibration (processing.likelihood)
    quantile: float = 0.95
    """Surprises above this quantile of the series' own recent ones fit its tail."""
    tail_alpha: float = 0.01
    """EWMA weight of the tail's fit, per exceedance."""
    half_log_p: float = 7.0
    """A tail probability of 10^-half_log_p scores 0.5."""
    slope_log_p: float = 0.5
    """Steepness in decades of probability: 0.9 one decade beyond, 0.1 one decade before."""
    # flatline
    run_half: float = 30
    # alerts (processing.episodes)
    open_at: float = 0.5
    close_below: float = 0.3
    close_after: int = 3
    settle: int = 30
    """Points of a series after an episode closes before it can open another."""
    alert_window: int = 120
    """``citytel detect``'s score column: a score counts as an alert only where it beats
    every score of the series' previous ``alert_window`` values (processing.episodes)."""


VALUES = ValueConfig()
"""The configuration the service and ``citytel detect`` run."""
