"""Running the detectors on the values the ingester has just stored, and keeping episodes.

Detection runs after the batch's commit, outside its transaction: the values are safe
whatever happens here, and episodes are written in a transaction of their own. Value
detectors score each series: deviation (against the series' recent level and, for
metrics with a daily rhythm, against its usual level at this hour: both must find the
value unusual), drift and flatline; physical range checks score the values the ingester
dead-lettered as out of range. The domain rules score readings, whose metrics are taken
together. ``silence`` asks, at any time, which devices and gateways have gone quiet.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from devices.catalog import BY_NAME, METRICS, Kind
from devices.columns import EpisodeChange, ValueColumns
from devices.tables import HIGH, LOW, METRIC_SLOTS
from processing.checks import DeadDetector, Flicker, range_scores
from processing.config import VALUES
from processing.episodes import OPENED, Changes, Episodes
from processing.rules import LIT_W, Dropout, StreetlightRules, TrafficRules, pivot_readings
from processing.state import Arrays, arrays_of, grow, load_arrays
from processing.values import ValueDetectors, value_episodes

log = logging.getLogger(__name__)

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

LAYOUT = 3
"""The state's layout, checkpointed with it. 2: the value detectors' and their episode
trackers' state by compact slot (``_slot_of``), not by series id. 3: one value stack
(``processing.values``: learned cycles, calibration) from ``processing.config``."""

_POWER, _DIM, _LUX = (BY_NAME[n].id for n in ("power_w", "dim_pct", "ambient_lux"))
_SPEED, _VOLUME, _OCCUPANCY = (BY_NAME[n].id for n in ("speed_kmh", "volume_veh", "occupancy_pct"))
_PIVOT = (_POWER, _DIM, _LUX, _SPEED, _VOLUME, _OCCUPANCY)

SEASONAL = frozenset(
    BY_NAME[n].id
    for n in (
        "ambient_lux",
        "temperature_c",
        "humidity_pct",
        "pm2_5_ugm3",
        "pm10_ugm3",
        "no2_ppb",
        "o3_ppb",
        "noise_dba",
        "pressure_hpa",
        "speed_kmh",
        "volume_veh",
        "occupancy_pct",
    )
)
"""Metrics with a daily rhythm: scored against their usual level at this hour."""
PLAIN = frozenset({BY_NAME["voltage_v"].id})
"""Metrics scored against their recent level only."""
DRIFTING = frozenset(m.id for m in METRICS if m.kind == Kind.ENVIRONMENT)
"""Metrics scored for drift: a sensor's (a lamp's power or a road's speed moves with the
clouds and the traffic, and has rules of its own)."""
SCORED = SEASONAL | PLAIN
"""Metrics the value detectors score (deviation, flatline): they never hold one value for
long when healthy.

A lamp's power, current, dimming and state are left to the streetlight rules: they switch
between a few levels with the sun and the schedule, and hold one of them for hours."""

RULES = ("lamp_out", "day_burner", "power_out_of_band", "flicker", "incident", "dead_detector")
VALUE_DETECTORS = ("deviation", "drift", "flatline", "range")
SILENCE = ("dropout", "gateway_silent")


def _mask(ids: frozenset[int]) -> npt.NDArray[np.bool_]:
    m = np.zeros(METRIC_SLOTS, dtype=np.bool_)
    m[list(ids)] = True
    return m


_SEASONAL, _SCORED, _DRIFTING = _mask(SEASONAL), _mask(SCORED), _mask(DRIFTING)
_COLUMN = np.full(METRIC_SLOTS, -1, dtype=np.int64)  # a pivoted metric's column
_COLUMN[list(_PIVOT)] = np.arange(len(_PIVOT))


class Detection:
    """Every detector over every series, with an episode tracker per detector."""

    def __init__(
        self, *, open_at: float = 0.5, close_below: float = 0.3, timezone: str = "UTC"
    ) -> None:
        self._tz = ZoneInfo(timezone)
        # the value detectors, as ``citytel detect`` runs them: one configuration
        self._values_of = ValueDetectors(VALUES)
        self._streetlights = StreetlightRules()
        self._flicker = Flicker()
        self._traffic = TrafficRules()
        self._dead = DeadDetector()
        self._devices = Dropout()
        self._gateways = Dropout(factor=5.0)
        self._device_gateway = np.full(1024, -1, dtype=np.int64)
        # Series ids (device x 64 + metric) are sparse: the value detectors and their
        # episode trackers keep their state by slot, a dense number given to each series
        # as it first appears, so a batch touches a few compact arrays in order.
        self._slot_of = np.full(0, -1, dtype=np.int64)  # series id -> slot, -1: none yet
        self._series_of = np.zeros(0, dtype=np.int64)  # slot -> series id
        self._layout = np.array([LAYOUT], dtype=np.int64)
        names = (*VALUE_DETECTORS, *RULES, *SILENCE)
        self._episodes = {n: Episodes(open_at=open_at, close_below=close_below) for n in names}
        for n in ("deviation", "drift", "flatline"):
            self._episodes[n] = value_episodes(VALUES, open_at=open_at, close_below=close_below)
        self.opened: Counter[str] = Counter()

    def observe(
        self,
        values: ValueColumns,
        *,
        gateway: npt.NDArray[np.int32] | None = None,
        out_of_range: ValueColumns | None = None,
        received: I64 | None = None,
    ) -> list[EpisodeChange]:
        """Score a batch's stored values; the episodes that opened or closed.

        ``gateway`` is each value's gateway key (for gateway silence); ``out_of_range``
        are the values the ingester dead-lettered as outside their metric's range;
        ``received`` is when each value arrived (µs; default its event time): silence is
        judged on arrivals, so a skewed clock or a replayed backlog is not a dropout.
        """
        changes = self._range(values, out_of_range)
        if not len(values):
            return self._counted(changes)
        t, x, metric, reading = values.time_us, values.value, values.metric, values.reading
        device = values.device.astype(np.int64)
        arrived = t if received is None else received
        gw = None if gateway is None else gateway.astype(np.int64)
        if len(t) > 1 and not (t[1:] >= t[:-1]).all():  # each series' past first
            order = np.argsort(t, kind="stable")
            t, x, metric, reading = t[order], x[order], metric[order], reading[order]
            device, arrived = device[order], arrived[order]
            gw = None if gw is None else gw[order]
        self._heard(device, t, arrived, gw)
        changes += self._values(device * METRIC_SLOTS + metric, metric, t, x)
        changes += self._rules(device, metric, t, x, reading)
        return self._counted(changes)

    def silence(self, now_us: int) -> list[EpisodeChange]:
        """Dropout episodes at ``now_us``: gateways gone quiet, and devices of gateways that
        are still heard (a silent gateway's devices are one episode, not one each)."""
        gateways = self._gateways.scores(now_us)
        devices = self._devices.scores(now_us)
        n = min(len(devices), len(self._device_gateway))
        gw = self._device_gateway[:n]
        known = gw >= 0
        devices[:n][known] = np.where(gateways[gw[known]] >= 0.5, 0.0, devices[:n][known])
        changes: list[EpisodeChange] = []
        for name, scores, tracker in (("dropout", devices, self._devices),
                                      ("gateway_silent", gateways, self._gateways)):  # fmt: skip
            keys = np.flatnonzero(tracker.heard())
            quiet_s = (now_us - tracker.last_heard()[keys]) / 1e6
            t = np.full(len(keys), now_us, dtype=np.int64)
            changes += self._track(name, keys, t, scores[keys], quiet_s, gateway=name != "dropout")
        return self._counted(changes)

    def state(self) -> Arrays:
        """Every detector's and episode tracker's state, to checkpoint."""
        return arrays_of(self)

    def load(self, arrays: Arrays) -> bool:
        """Put back a state from ``state`` (after a restart); False if it was discarded.

        A state of another layout (an older citytel's) is discarded with a warning: the
        detectors then warm up again.
        """
        layout = arrays.get("_layout")
        if layout is None or layout.tolist() != [LAYOUT]:
            found = "none" if layout is None else layout.tolist()
            log.warning("detector state of layout %s, not %d: discarded", found, LAYOUT)
            return False
        load_arrays(self, arrays)
        return True

    def _slots(self, series: I64) -> I64:
        """Each series' slot, new series given the next free ones."""
        self._slot_of = index = grow(self._slot_of, int(series.max()) + 1, -1)
        slots: I64 = index[series]
        new = slots < 0
        if new.any():
            fresh = np.unique(series[new])
            used = len(self._series_of)
            index[fresh] = np.arange(used, used + len(fresh))
            self._series_of = np.concatenate([self._series_of, fresh])
            slots = index[series]
        return slots

    def _counted(self, changes: list[EpisodeChange]) -> list[EpisodeChange]:
        self.opened.update(c.detector for c in changes if c.opened)
        return changes

    def _heard(self, device: I64, t: I64, arrived: I64, gateway: I64 | None) -> None:
        self._devices.update(device, t, arrived)
        if gateway is not None and len(gateway):
            self._gateways.update(gateway, t, arrived)
            self._device_gateway = grow(self._device_gateway, int(device.max()) + 1, -1)
            self._device_gateway[device] = gateway

    def _values(
        self, series: I64, metric: npt.NDArray[np.int16], t: I64, x: F64
    ) -> list[EpisodeChange]:
        changes: list[EpisodeChange] = []
        m = metric.astype(np.intp)  # a table indexed by int16 is several times slower
        scored = _SCORED[m]
        if not scored.any():
            return changes
        i = np.flatnonzero(scored)
        s, ts, xs, ms = self._slots(series[i]), t[i], x[i], m[i]
        self._values_of.utc_offset_s = self._offset(int(ts[0]))
        grid = _SEASONAL[ms]  # with a daily rhythm: also against the usual at this hour
        v = self._values_of.update(s, ts, xs, grid=grid, group=ms.astype(np.int64))
        if grid.any():
            drift = v.drift[grid]
            drift[~_DRIFTING[ms[grid]]] = 0.0
            changes += self._track("drift", s[grid], ts[grid], drift, xs[grid], by_slot=True)
        changes += self._track("deviation", s, ts, v.deviation, xs, by_slot=True)
        # the same metrics never hold one value for long when healthy: flatline too
        changes += self._track("flatline", s, ts, v.flatline, xs, by_slot=True)
        return changes

    def _range(self, values: ValueColumns, rejected: ValueColumns | None) -> list[EpisodeChange]:
        """Out-of-range values score high; the in-range values of those series close it."""
        if rejected is not None and not len(rejected):
            rejected = None
        if rejected is None and not len(self._episodes["range"].open_series):
            return []  # nothing out of range now, nor still open
        both = values if rejected is None else _concat(values, rejected)
        series = both.device.astype(np.int64) * METRIC_SLOTS + both.metric
        tracker = self._episodes["range"]
        keys = tracker.open_series
        if rejected is not None:
            keys = np.union1d(keys, series[len(values) :])
        watched = np.isin(series, keys)
        if not watched.any():
            return []
        order = np.flatnonzero(watched)[np.argsort(both.time_us[watched], kind="stable")]
        s, t, x = series[order], both.time_us[order], both.value[order]
        scores = range_scores(both.metric[order].astype(np.int64), x, LOW, HIGH)
        return self._track("range", s, t, scores, x, per_metric=True)

    def _offset(self, t_us: int) -> int:
        offset = datetime.fromtimestamp(t_us / 1e6, UTC).astimezone(self._tz).utcoffset()
        return int(offset.total_seconds()) if offset is not None else 0

    def _rules(
        self,
        device: I64,
        metric: npt.NDArray[np.int16],
        t: I64,
        x: F64,
        reading: npt.NDArray[np.int32],
    ) -> list[EpisodeChange]:
        r_device, r_time, columns = pivot_readings(reading, metric, t, device, x, _COLUMN)
        cols = dict(zip(_PIVOT, columns, strict=True))
        changes: list[EpisodeChange] = []
        lamp = ~np.isnan(cols[_POWER]) & ~np.isnan(cols[_LUX])
        if lamp.any():
            d, rt, power = r_device[lamp], r_time[lamp], cols[_POWER][lamp]
            scores = self._streetlights.update(d, rt, power, cols[_DIM][lamp], cols[_LUX][lamp])
            scores["flicker"] = self._flicker.update(d, rt, power > LIT_W)
            for name, s in scores.items():
                changes += self._track(name, d, rt, s, power)
        road = ~np.isnan(cols[_SPEED]) | ~np.isnan(cols[_VOLUME]) | ~np.isnan(cols[_OCCUPANCY])
        if road.any():
            d, rt = r_device[road], r_time[road]
            speed, volume, occ = cols[_SPEED][road], cols[_VOLUME][road], cols[_OCCUPANCY][road]
            both = ~np.isnan(speed) & ~np.isnan(occ)
            if both.any():
                s = self._traffic.update(d[both], speed[both], occ[both])
                changes += self._track("incident", d[both], rt[both], s, speed[both])
            s = self._dead.update(d, rt, speed, volume, occ)
            changes += self._track("dead_detector", d, rt, s, volume)
        return changes

    def _track(
        self,
        name: str,
        key: I64,
        t: I64,
        scores: F64,
        x: F64,
        *,
        per_metric: bool = False,
        by_slot: bool = False,
        gateway: bool = False,
    ) -> list[EpisodeChange]:
        """Episode changes of ``name``'s tracker; ``key`` is a device, a gateway, a series
        id (``per_metric``) or a series' slot (``by_slot``)."""
        ch: Changes = self._episodes[name].update(key, t, scores, x)
        if not len(ch):
            return []
        keys = self._series_of[ch.series] if by_slot else ch.series
        per_metric = per_metric or by_slot
        out = []
        for k, kind, start, end, peak, observed in zip(
            keys.tolist(),
            ch.kind.tolist(),
            ch.start.tolist(),
            ch.end.tolist(),
            ch.peak.tolist(),
            ch.observed.tolist(),
            strict=True,
        ):
            device = None if gateway else k // METRIC_SLOTS if per_metric else k
            metric = k % METRIC_SLOTS if per_metric else None
            out.append(
                EpisodeChange(
                    device,
                    metric,
                    name,
                    kind == OPENED,
                    start,
                    end,
                    peak,
                    observed,
                    gateway=k if gateway else None,
                )
            )
        return out


def _concat(a: ValueColumns, b: ValueColumns) -> ValueColumns:
    return ValueColumns(
        *(np.concatenate([getattr(a, f), getattr(b, f)]) for f in ValueColumns.__slots__)
    )
