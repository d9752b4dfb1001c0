"""Running the detectors on the values the ingester has just stored, and keeping episodes.

Detection runs after the batch's commit, outside its transaction: the values are safe
whatever happens here, and episodes are written in a transaction of their own. Value
detectors (deviation, flatline) score each series; the domain rules score readings,
whose metrics are taken together (a streetlight's power, dimming and ambient light;
a traffic detector's speed and occupancy).
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import numpy.typing as npt

from devices.catalog import BY_NAME
from ingest.aggregate import METRIC_SLOTS
from processing.detectors import Deviation, Flatline
from processing.episodes import OPENED, Changes, Episodes
from processing.rules import StreetlightRules, TrafficRules
from storage.episodes import EpisodeChange
from storage.writer import ValueColumns

_POWER, _DIM, _LUX = (BY_NAME[n].id for n in ("power_w", "dim_pct", "ambient_lux"))
_SPEED, _OCCUPANCY = BY_NAME["speed_kmh"].id, BY_NAME["occupancy_pct"].id
RULES = ("lamp_out", "day_burner", "power_out_of_band", "incident")


class Detection:
    """Every detector over every series, with an episode tracker per detector."""

    def __init__(self, *, open_at: float = 0.5, close_below: float = 0.3) -> None:
        self._deviation = Deviation(series=1 << 16)
        self._flatline = Flatline(series=1 << 16)
        self._streetlights = StreetlightRules()
        self._traffic = TrafficRules()
        names = ("deviation", "flatline", *RULES)
        self._episodes = {n: Episodes(open_at=open_at, close_below=close_below) for n in names}
        self.opened: Counter[str] = Counter()

    def observe(self, values: ValueColumns) -> list[EpisodeChange]:
        """Score the stored values of a batch; the episodes that opened or closed."""
        if not len(values):
            return []
        order = np.argsort(values.time_us, kind="stable")  # each series' past first
        t, x = values.time_us[order], values.value[order]
        device, metric = values.device[order], values.metric[order]
        series = device.astype(np.int64) * METRIC_SLOTS + metric
        changes: list[EpisodeChange] = []
        for name, detector in (("deviation", self._deviation), ("flatline", self._flatline)):
            scores = detector.update(series, t, x)
            changes += self._track(name, series, t, scores, x, per_metric=True)
        changes += self._rules(device, metric, t, x, values.reading[order])
        self.opened.update(c.detector for c in changes if c.opened)
        return changes

    def _rules(
        self,
        device: npt.NDArray[np.int32],
        metric: npt.NDArray[np.int16],
        t: npt.NDArray[np.int64],
        x: npt.NDArray[np.float64],
        reading: npt.NDArray[np.int32],
    ) -> list[EpisodeChange]:
        rows, first = np.unique(reading, return_index=True)
        rows_in_time = np.argsort(first, kind="stable")  # readings in the values' time order
        position = np.searchsorted(rows, reading)
        r_device, r_time = device[first].astype(np.int64), t[first]
        cols = {}
        for m in (_POWER, _DIM, _LUX, _SPEED, _OCCUPANCY):
            col = np.full(len(rows), np.nan)
            mask = metric == m
            col[position[mask]] = x[mask]
            cols[m] = col[rows_in_time]
        r_device, r_time = r_device[rows_in_time], r_time[rows_in_time]
        changes: list[EpisodeChange] = []
        lamp = ~np.isnan(cols[_POWER]) & ~np.isnan(cols[_LUX])
        if lamp.any():
            scores = self._streetlights.update(
                r_device[lamp], r_time[lamp], cols[_POWER][lamp], cols[_DIM][lamp], cols[_LUX][lamp]
            )
            for name, s in scores.items():
                changes += self._track(name, r_device[lamp], r_time[lamp], s, cols[_POWER][lamp])
        road = ~np.isnan(cols[_SPEED]) & ~np.isnan(cols[_OCCUPANCY])
        if road.any():
            s = self._traffic.update(r_device[road], cols[_SPEED][road], cols[_OCCUPANCY][road])
            changes += self._track("incident", r_device[road], r_time[road], s, cols[_SPEED][road])
        return changes

    def _track(
        self,
        name: str,
        key: npt.NDArray[np.int64],
        t: npt.NDArray[np.int64],
        scores: npt.NDArray[np.float64],
        x: npt.NDArray[np.float64],
        *,
        per_metric: bool = False,
    ) -> list[EpisodeChange]:
        ch: Changes = self._episodes[name].update(key, t, scores, x)
        return [
            EpisodeChange(
                int(k // METRIC_SLOTS) if per_metric else int(k),
                int(k % METRIC_SLOTS) if per_metric else None,
                name,
                kind == OPENED,
                int(start),
                int(end),
                float(peak),
                float(observed),
            )
            for k, kind, start, end, peak, observed in zip(
                ch.series.tolist(),
                ch.kind.tolist(),
                ch.start.tolist(),
                ch.end.tolist(),
                ch.peak.tolist(),
                ch.observed.tolist(),
                strict=True,
            )
        ]
