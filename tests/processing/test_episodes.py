from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from processing.episodes import CLOSED, OPENED, Episodes


def _reference(
    scores: list[float], open_at: float, close_below: float, close_after: int
) -> list[tuple[int, int, float]]:
    """(start, end, peak) of each closed episode, straight from the definition."""
    out, open_, start, last_bad, quiet, peak = [], False, 0, 0, 0, 0.0
    for t, x in enumerate(scores):
        if not open_:
            if x >= open_at:
                open_, start, last_bad, quiet, peak = True, t, t, 0, x
        elif x >= close_below:
            quiet, last_bad, peak = 0, t, max(peak, x)
        else:
            quiet += 1
            if quiet >= close_after:
                out.append((start, last_bad, peak))
                open_ = False
    return out


def test_an_episode_opens_keeps_its_peak_and_closes_after_quiet_points() -> None:
    e = Episodes(open_at=0.5, close_below=0.3, close_after=3)
    scores = np.array([0.0, 0.1, 0.9, 0.95, 0.2, 0.6, 0.1, 0.1, 0.1, 0.0])
    values = np.arange(10) * 10.0
    ch = e.update(np.zeros(10, np.int64), np.arange(10), scores, values)
    assert ch.kind.tolist() == [OPENED, CLOSED]
    assert (ch.start.tolist(), ch.end.tolist()) == ([2, 2], [2, 5])
    assert ch.peak.tolist() == [0.9, 0.95] and ch.observed.tolist() == [20.0, 30.0]
    assert e.open_series.tolist() == []


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=200), st.integers(1, 50))
def test_batches_of_any_size_give_the_reference_episodes(scores: list[float], batch: int) -> None:
    e = Episodes(open_at=0.5, close_below=0.3, close_after=3)
    closed = []
    for i in range(0, len(scores), batch):
        chunk = np.array(scores[i : i + batch])
        ch = e.update(np.full(len(chunk), 7), np.arange(i, i + len(chunk)), chunk, chunk)
        closed += [
            (int(a), int(b), float(p))
            for k, a, b, p in zip(ch.kind, ch.start, ch.end, ch.peak, strict=True)
            if k == CLOSED
        ]
    assert closed == _reference(scores, 0.5, 0.3, 3)
