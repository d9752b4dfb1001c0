"""Windowed aggregates against a plain-Python reference, including late and out-of-order values."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.columns import Partials
from processing.windows import Windows, merge

SIZE = 60_000_000  # one minute in µs


def _reference(
    series: list[int], time: list[int], value: list[float]
) -> dict[tuple[int, int], dict[str, float]]:
    groups: dict[tuple[int, int], list[tuple[int, float]]] = defaultdict(list)
    for s, t, v in zip(series, time, value, strict=True):
        groups[(s, t - t % SIZE)].append((t, v))
    out = {}
    for key, items in groups.items():
        vs = [v for _, v in items]
        mean = sum(vs) / len(vs)
        out[key] = {
            "count": len(vs),
            "sum": sum(vs),
            "min": min(vs),
            "max": max(vs),
            "mean": mean,
            "m2": sum((v - mean) ** 2 for v in vs),
            "first": min(items)[1],
            "last": max(items)[1],
        }
    return out


def _late_reference(series: list[int], time: list[int]) -> int:
    newest: dict[int, int] = {}
    late = 0
    for s, t in zip(series, time, strict=True):
        w = t - t % SIZE
        if s in newest and w < newest[s]:
            late += 1
        newest[s] = max(newest.get(s, w), w)
    return late


def _concat(parts: list[Partials]) -> Partials:
    return Partials(*(np.concatenate([getattr(p, f) for p in parts]) for f in Partials.__slots__))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 6), st.integers(0, 10 * SIZE), st.floats(-1e6, 1e6)),
        min_size=1,
        max_size=300,
        unique_by=lambda x: (x[0], x[1]),
    ),
    st.lists(st.integers(1, 50), min_size=1, max_size=10),
)
def test_streamed_windows_merge_to_the_reference(
    rows: list[tuple[int, int, float]], cuts: list[int]
) -> None:
    series = [r[0] for r in rows]
    time = [r[1] for r in rows]
    value = [r[2] for r in rows]
    windows = Windows(SIZE, series=2)  # grows as ids appear
    parts, start = [], 0
    for cut in [*cuts, len(rows)]:  # batches of random sizes, arrival order kept
        end = min(len(rows), start + cut) if cut != len(rows) else len(rows)
        parts.append(
            windows.update(
                np.array(series[start:end]), np.array(time[start:end]), np.array(value[start:end])
            )
        )
        start = end
    parts.append(windows.close(np.iinfo(np.int64).max - SIZE))
    merged = merge(_concat(parts))
    expected = _reference(series, time, value)
    assert len(merged) == len(expected)
    for i in range(len(merged)):
        e = expected[(int(merged.series[i]), int(merged.window[i]))]
        assert merged.count[i] == e["count"]
        assert merged.min[i] == e["min"] and merged.max[i] == e["max"]
        assert merged.first[i] == e["first"] and merged.last[i] == e["last"]
        assert merged.sum[i] == pytest.approx(e["sum"], rel=1e-9, abs=1e-6)
        assert merged.mean[i] == pytest.approx(e["mean"], rel=1e-9, abs=1e-6)
        assert merged.m2[i] == pytest.approx(e["m2"], rel=1e-6, abs=1e-3)
    assert int(merged.late.sum()) == _late_reference(series, time)


def test_close_emits_only_windows_the_watermark_has_passed() -> None:
    w = Windows(SIZE)
    assert len(w.update(np.array([0, 1]), np.array([10, SIZE + 10]), np.array([1.0, 2.0]))) == 0
    closed = w.close(SIZE)  # the first minute is over, the second is not
    assert closed.series.tolist() == [0] and closed.window.tolist() == [0]
    assert w.close(SIZE).series.tolist() == []  # emitted once
    assert w.close(2 * SIZE).series.tolist() == [1]


def test_a_late_value_reopens_its_window_as_a_separate_partial() -> None:
    w = Windows(SIZE)
    moved = w.update(np.array([3, 3, 3]), np.array([5, SIZE + 5, 7]), np.array([1.0, 2.0, 4.0]))
    assert moved.window.tolist() == [0, 0] and moved.late.tolist() == [0, 1]
    merged = merge(moved)
    assert (
        merged.count.tolist() == [2]
        and merged.sum.tolist() == [5.0]
        and merged.late.tolist() == [1]
    )


def test_input_is_validated() -> None:
    w = Windows(SIZE)
    with pytest.raises(ValueError, match="same length"):
        w.update(np.array([1]), np.array([1, 2]), np.array([1.0]))
    with pytest.raises(ValueError, match="finite"):
        w.update(np.array([1]), np.array([1]), np.array([np.nan]))
    with pytest.raises(ValueError, match=">= 0"):
        w.update(np.array([-1]), np.array([1]), np.array([1.0]))


def test_the_kernels_give_the_same_partials_without_jit() -> None:
    """The same input through the interpreted kernels (NUMBA_DISABLE_JIT=1), for coverage
    and as a check that compilation does not change a result."""
    import json
    import os
    import subprocess
    import sys

    script = (
        "import json, numpy as np\n"
        "from processing.windows import Windows, merge\n"
        "rng = np.random.default_rng(1)\n"
        "s = rng.integers(0, 50, 2000); t = rng.integers(0, 20 * 60_000_000, 2000)\n"
        "w = Windows(60_000_000); p = [w.update(s, t, rng.normal(size=2000)), w.close(2**62)]\n"
        "P = type(p[0])\n"
        "m = merge(P(*(np.concatenate([getattr(x, f) for x in p]) for f in P.__slots__)))\n"
        "print(json.dumps([m.count.tolist(), m.sum.round(9).tolist(), m.late.tolist()]))\n"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "NUMBA_DISABLE_JIT": flag},
        ).stdout
        for flag in ("1", "0")
    ]
    assert json.loads(runs[0]) == json.loads(runs[1])
    assert sum(json.loads(runs[0])[0]) == 2000
