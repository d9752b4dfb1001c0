"""The real-world benchmark's window score: silent is 0, perfect is 100, early beats late."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bench.corpora import runs
from bench.realworld import FP_COST, PERFECT, Stream, Tally, earliness, load, run, tally

SECOND = 1_000_000


def _stream(windows: list[tuple[int, int]], n: int = 1_000) -> Stream:
    t = np.arange(n, dtype=np.int64) * SECOND
    return Stream("f/s.csv", "f", t, np.zeros(n), [(a * SECOND, b * SECOND) for a, b in windows])


def _score(stream: Stream, points: list[int]) -> float:
    detected = np.zeros(len(stream.time_us), dtype=np.bool_)
    detected[points] = True
    return tally(stream, detected).score


def test_the_window_score_is_normalised_between_silence_and_perfection() -> None:
    s = _stream([(100, 199), (500, 599)])
    assert _score(s, []) == 0.0
    assert _score(s, [100, 500]) == 100.0
    assert abs(earliness(-1.0) - PERFECT) < 1e-12 and earliness(0.0) == 0.0
    # earliest detection counts, later ones in the window earn nothing and cost nothing
    assert _score(s, [120, 500]) > _score(s, [180, 500]) == _score(s, [180, 190, 500])
    # a detection outside every window costs FP_COST of a missed window
    one = Tally(credit=PERFECT, missed=1, windows=2)
    assert abs(_score(s, [100, 300]) - (one.score - 100 * FP_COST / (PERFECT + 1) / 2)) < 1e-9
    assert _score(s, [300]) < 0.0  # worse than silence


def test_runs_of_labels_become_windows() -> None:
    label = np.array([0, 1, 1, 0, 0, 1, 0, 1], dtype=np.bool_)
    assert runs(label) == [(1, 2), (5, 5), (7, 7)]


def test_the_benchmark_runs_citytel_and_baselines_on_a_corpus(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    t0 = 1_763_337_600
    windows = {}
    for k in range(3):
        v = 20 + rng.normal(0, 1, 2_000)
        v[1_500:1_530] += 15  # a clear anomaly in every stream
        lines = "".join(f"{t0 + 60 * i},{x}\n" for i, x in enumerate(v))
        name = f"fam{k % 2}/s{k}.csv"
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("timestamp,value\n" + lines)
        windows[name] = [[str(t0 + 60 * 1_480), str(t0 + 60 * 1_560)]]
    (tmp_path / "windows.json").write_text(json.dumps(windows))
    assert len(load(tmp_path)) == 3
    results = {name: total for name, _, total, _ in run(tmp_path)}
    for name in ("citytel detect: score column", "citytel detect: alerts (episodes opened)"):
        assert results[name].missed == 0 and results[name].score > 80
    assert "EWMA z-score (span 1 day)" in results and "median/MAD z-score" in results
