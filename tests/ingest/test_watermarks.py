"""Watermarks per gateway: one gateway's live stream never makes another's backfill late."""

from __future__ import annotations

import numpy as np

from devices.columns import ValueColumns
from ingest.aggregate import Aggregator

NOW_US = 1_763_762_999_000_000
HOUR_US = 3_600_000_000


def _values(device: int, times_us: list[int]) -> ValueColumns:
    n = len(times_us)
    return ValueColumns(
        np.array(times_us, dtype=np.int64),
        np.full(n, device, dtype=np.int32),
        np.full(n, 1, dtype=np.int16),
        np.arange(n, dtype=np.float64),
        np.zeros(n, dtype=np.int32),
        np.arange(n, dtype=np.int32),
    )


def _feed(agg: Aggregator, device: int, gateway: int, times_us: list[int]) -> dict[int, int]:
    """Prepare and confirm a batch; the number of values per emitted 1-minute window."""
    values = _values(device, times_us)
    prepared = agg.prepare(values, np.full(len(values), gateway, dtype=np.int32), NOW_US)
    agg.confirm(prepared)
    p = prepared.partials[60]
    return dict(zip(p.window.tolist(), p.count.tolist(), strict=True))


def test_a_backfill_is_on_time_by_its_own_gateways_clock() -> None:
    agg = Aggregator(widths_s=(60,), lateness_s=300)
    _feed(agg, device=1, gateway=1, times_us=[NOW_US - 1_000_000])  # gateway 1 is live
    assert agg.watermark_of(1) == NOW_US - 1_000_000
    # gateway 2 replays minute after minute from three hours ago, one value per 10 s
    start = NOW_US - 3 * HOUR_US
    start -= start % 60_000_000
    backlog = [start + i * 10_000_000 for i in range(6 * 60)]
    for i in range(0, len(backlog), 60):  # ten minutes per batch
        _feed(agg, device=2, gateway=2, times_us=backlog[i : i + 60])
    assert agg.late == 0  # a global watermark would have made all 360 late
    assert agg.watermark_of(2) == backlog[-1]


def test_windows_close_as_their_own_gateway_moves_on() -> None:
    agg = Aggregator(widths_s=(60,), lateness_s=0)
    start = NOW_US - 3 * HOUR_US
    start -= start % 60_000_000
    _feed(agg, device=2, gateway=2, times_us=[start, start + 1])
    # gateway 1's clock far ahead closes nothing of gateway 2
    assert _feed(agg, device=1, gateway=1, times_us=[NOW_US - 1]) == {}
    # gateway 2 moving one minute on closes its first window, with both values
    closed = _feed(agg, device=2, gateway=2, times_us=[start + 60_000_000])
    assert closed == {start: 2}
