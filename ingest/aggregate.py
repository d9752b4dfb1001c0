"""Feeding committed values to the window kernels, inside the batch's own transaction.

The values of a batch reach the kernels only after the message identities have filtered
out duplicates, and the partials they emit are upserted in the same transaction as the
values. If that transaction fails, the kernels' state is put back, so the retry counts
every value once. A window is emitted when its series moves to a later window, or when
the watermark passes its end plus ``lateness_s``; a value arriving after that is late:
stored raw as always, merged into its window's row, and counted in ``late``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg.rows import TupleRow

from devices.columns import Partials, ValueColumns
from devices.tables import METRIC_SLOTS
from processing.windows import EMPTY, Snapshot, Windows, merge, singles
from storage.rollups import upsert_partials


@dataclass(slots=True)
class Prepared:
    """What one batch did to the kernels: partials to write, and how to undo it."""

    partials: dict[int, Partials]
    undo: list[tuple[Windows, Snapshot]]
    watermarks: npt.NDArray[np.int64]
    """Each gateway's watermark (by gateway key) once this batch is confirmed."""
    late: int


@dataclass(slots=True)
class Aggregator:
    """Windowed aggregates of widths ``widths_s`` over every series.

    The watermark is kept per gateway: one gateway's clock, or its live stream while
    another replays hours of backlog, never makes another gateway's values late.
    """

    widths_s: tuple[int, ...] = (60, 900, 3600)
    lateness_s: float = 300.0
    late: int = 0
    _windows: dict[int, Windows] = field(default_factory=dict)
    _watermarks: npt.NDArray[np.int64] = field(default_factory=lambda: _empty(64))
    _series_gateway: npt.NDArray[np.int32] = field(
        default_factory=lambda: np.zeros(1 << 16, np.int32)
    )

    def __post_init__(self) -> None:
        self._windows = {w: Windows(w * 1_000_000, series=1 << 16) for w in self.widths_s}

    def watermark_of(self, gateway: int) -> int:
        """A gateway's watermark (Unix µs; ``EMPTY`` before its first value)."""
        return int(self._watermarks[gateway]) if gateway < len(self._watermarks) else EMPTY

    def prepare(
        self, values: ValueColumns, gateway: npt.NDArray[np.int32], now_us: int
    ) -> Prepared:
        """Fold the batch in and close what the watermarks have passed; undoable.

        ``gateway`` is the key of each value's gateway."""
        series = values.device.astype(np.int64) * METRIC_SLOTS + values.metric
        t, v = values.time_us, values.value
        self._learn(series, gateway)
        old = self._watermarks
        new = old.copy()
        if len(t):
            np.maximum.at(new, gateway, np.minimum(t, now_us))
        lateness = int(self.lateness_s * 1_000_000)
        prepared = Prepared({}, [], new, 0)
        mine = old[gateway]  # each value's gateway's watermark before this batch
        for width, windows in self._windows.items():
            size = width * 1_000_000
            late = (mine != EMPTY) & ((t - t % size) + size + lateness <= mine)
            on_time = ~late
            prepared.undo.append((windows, windows.snapshot(series[on_time])))
            parts = [windows.update(series[on_time], t[on_time], v[on_time]),
                     singles(series[late], t[late], v[late], size)]  # fmt: skip
            # Windows end on multiples of the width: only when a watermark has crossed
            # one since the last batch can a window be due (most batches skip the scan).
            if _crossed(old, new, lateness, size):
                before = self._before(new, lateness)
                prepared.undo.append((windows, windows.snapshot(windows.due(before))))
                parts.append(windows.close(before))
            prepared.partials[width] = merge(_concat(parts))
            if width == min(self.widths_s):
                prepared.late = int(late.sum())
        return prepared

    def _learn(self, series: npt.NDArray[np.int64], gateway: npt.NDArray[np.int32]) -> None:
        """Remember each series' gateway (for closing by its watermark)."""
        if len(series) and int(series.max()) >= len(self._series_gateway):
            self._series_gateway = _grown(self._series_gateway, int(series.max()) + 1, 0)
        if len(gateway) and int(gateway.max()) >= len(self._watermarks):
            self._watermarks = _grown(self._watermarks, int(gateway.max()) + 1, EMPTY)
        self._series_gateway[series] = gateway

    def _before(self, watermarks: npt.NDArray[np.int64], lateness: int) -> npt.NDArray[np.int64]:
        """Per series: its gateway's watermark minus lateness (EMPTY: close nothing)."""
        wm = watermarks[self._series_gateway]
        return np.where(wm == EMPTY, EMPTY, wm - lateness)

    def flush(self) -> Prepared:
        """Emit every window still open (at a clean stop); undoable like ``prepare``."""
        prepared = Prepared({}, [], self._watermarks, 0)
        end = np.iinfo(np.int64).max // 2
        for width, windows in self._windows.items():
            prepared.undo.append((windows, windows.snapshot(windows.due(end))))
            prepared.partials[width] = windows.close(end)
        return prepared

    async def write(self, conn: psycopg.AsyncConnection[TupleRow], prepared: Prepared) -> None:
        for width, p in prepared.partials.items():
            await upsert_partials(conn, width, p)

    def confirm(self, prepared: Prepared) -> None:
        """The transaction committed."""
        if len(prepared.watermarks) >= len(self._watermarks):
            self._watermarks = prepared.watermarks
        else:  # grown meanwhile (cannot happen within one transaction, but be exact)
            self._watermarks[: len(prepared.watermarks)] = prepared.watermarks
        self.late += prepared.late

    def undo(self, prepared: Prepared) -> None:
        """The transaction failed: put the kernels' state back as it was."""
        for windows, snapshot in reversed(prepared.undo):
            windows.restore(snapshot)


def _empty(n: int) -> npt.NDArray[np.int64]:
    return np.full(n, EMPTY, dtype=np.int64)


def _grown(a: npt.NDArray[Any], n: int, fill: int) -> npt.NDArray[Any]:
    out = np.full(max(n, 2 * len(a)), fill, dtype=a.dtype)
    out[: len(a)] = a
    return out


def _crossed(
    old: npt.NDArray[np.int64], new: npt.NDArray[np.int64], lateness: int, size: int
) -> bool:
    """Whether some gateway's watermark (minus lateness) entered a later window."""
    moved = new != old
    if not moved.any():
        return False
    was, now = old[moved], new[moved] - lateness
    return bool(((was == EMPTY) | ((was - lateness) // size != now // size)).any())


def _concat(parts: list[Partials]) -> Partials:
    return Partials(*(np.concatenate([getattr(p, f) for p in parts]) for f in Partials.__slots__))
