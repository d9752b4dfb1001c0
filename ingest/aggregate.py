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

import numpy as np
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
    watermark_us: int
    late: int


@dataclass(slots=True)
class Aggregator:
    """Windowed aggregates of widths ``widths_s`` over every series."""

    widths_s: tuple[int, ...] = (60, 900, 3600)
    lateness_s: float = 300.0
    watermark_us: int = EMPTY
    late: int = 0
    _windows: dict[int, Windows] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._windows = {w: Windows(w * 1_000_000, series=1 << 16) for w in self.widths_s}

    def prepare(self, values: ValueColumns, now_us: int) -> Prepared:
        """Fold the batch in and close what the watermark has passed; undoable."""
        series = values.device.astype(np.int64) * METRIC_SLOTS + values.metric
        t, v = values.time_us, values.value
        newest = int(t.max()) if len(t) else EMPTY
        watermark = max(self.watermark_us, min(newest, now_us))
        lateness = int(self.lateness_s * 1_000_000)
        prepared = Prepared({}, [], watermark, 0)
        for width, windows in self._windows.items():
            size = width * 1_000_000
            late = (t - t % size) + size + lateness <= self.watermark_us
            on_time = ~late
            prepared.undo.append((windows, windows.snapshot(series[on_time])))
            parts = [windows.update(series[on_time], t[on_time], v[on_time]),
                     singles(series[late], t[late], v[late], size)]  # fmt: skip
            # Windows end on multiples of the width: only when the watermark has crossed
            # one since the last batch can a window be due (most batches skip the scan).
            if watermark != EMPTY and self._crossed(watermark - lateness, size):
                before = watermark - lateness
                prepared.undo.append((windows, windows.snapshot(windows.due(before))))
                parts.append(windows.close(before))
            prepared.partials[width] = merge(_concat(parts))
            if width == min(self.widths_s):
                prepared.late = int(late.sum())
        return prepared

    def _crossed(self, before: int, size: int) -> bool:
        if self.watermark_us == EMPTY:
            return True
        previous = self.watermark_us - int(self.lateness_s * 1_000_000)
        return before // size != previous // size

    def flush(self) -> Prepared:
        """Emit every window still open (at a clean stop); undoable like ``prepare``."""
        prepared = Prepared({}, [], self.watermark_us, 0)
        end = np.iinfo(np.int64).max // 2
        for width, windows in self._windows.items():
            prepared.undo.append((windows, windows.snapshot(windows.due(end))))
            prepared.partials[width] = windows.close(end)
        return prepared

    async def write(self, conn: psycopg.AsyncConnection[TupleRow], prepared: Prepared) -> None:
        for width, p in prepared.partials.items():
            device = (p.series // METRIC_SLOTS).astype(np.int32)
            metric = (p.series % METRIC_SLOTS).astype(np.int16)
            await upsert_partials(conn, width, device, metric, p)

    def confirm(self, prepared: Prepared) -> None:
        """The transaction committed."""
        self.watermark_us = prepared.watermark_us
        self.late += prepared.late

    def undo(self, prepared: Prepared) -> None:
        """The transaction failed: put the kernels' state back as it was."""
        for windows, snapshot in reversed(prepared.undo):
            windows.restore(snapshot)


def _concat(parts: list[Partials]) -> Partials:
    return Partials(*(np.concatenate([getattr(p, f) for p in parts]) for f in Partials.__slots__))
