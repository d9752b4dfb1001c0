"""``citytel detect`` runs the service's value detectors: same configuration, same scores."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from citytel.detect import DETECTORS, alerts, parse_time, score_series
from devices.catalog import BY_NAME
from devices.columns import ValueColumns
from devices.errors import CitytelError
from ingest.detect import Detection

DAY_US = 86_400_000_000
START_US = 1_763_337_600_000_000  # 2025-11-17 00:00 UTC, a Monday


def _traffic(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[type-arg]
    """A road's speed every 5 minutes for 9 days with a rush hour, a gap of 2 days and a
    collapse on day 8."""
    t = START_US + np.arange(9 * 288, dtype=np.int64) * 300_000_000
    hour = (t // 3_600_000_000) % 24
    v = 60 - 25 * np.exp(-(((hour - 8) / 1.5) ** 2)) + rng.normal(0, 2, len(t))
    keep = (t < START_US + 4 * DAY_US) | (t >= START_US + 6 * DAY_US)
    v[np.flatnonzero(t >= START_US + 7 * DAY_US + 3 * 3_600_000_000)[:6]] = 5.0
    return t[keep], v[keep]


def test_the_same_series_scores_the_same_through_citytel_detect_and_the_ingester() -> None:
    t, v = _traffic(np.random.default_rng(7))
    metric = BY_NAME["speed_kmh"].id
    detection = Detection()
    seen: dict[str, list[Any]] = {name: [] for name in ("deviation", "drift", "flatline")}
    for name, got in seen.items():
        tracker = detection._episodes[name]
        update = tracker.update

        def spy(*args: Any, _update: Any = update, _got: list[Any] = got) -> Any:
            _got.append(args[2].copy())
            return _update(*args)

        tracker.update = spy  # type: ignore[method-assign]
    for i in range(0, len(t), 12):  # an hour a batch, as the ingester hands them over
        n = len(t[i : i + 12])
        detection.observe(
            ValueColumns(
                t[i : i + 12],
                np.full(n, 3, dtype=np.int32),
                np.full(n, metric, dtype=np.int16),
                v[i : i + 12],
                np.arange(n, dtype=np.int32),
                np.arange(n, dtype=np.int32),
            )
        )
    backtest = score_series(t, v, metric="speed_kmh")
    for name, got in seen.items():
        live = np.concatenate(got)
        assert len(live) == len(t)
        np.testing.assert_array_equal(live, backtest.scores[:, DETECTORS.index(name)])
    assert backtest.scores[:, 0].max() >= 0.9  # the collapse: the comparison has teeth
    opened, _ = alerts(backtest, t, open_at=0.5)
    assert sum(detection.opened.values()) == opened.sum() >= 1


def _run(tmp_path: Path, text: str, *args: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    source = tmp_path / "series.csv"
    source.write_text(text)
    target = tmp_path / "scored.csv"
    command = [sys.executable, "-m", "citytel.cli", "detect", "--input", str(source)]
    done = subprocess.run(
        [*command, "--output", str(target), *args],
        capture_output=True,
        text=True,
    )
    return done, target


def test_detect_command_writes_one_scored_row_per_input_row(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    v = 50 + rng.normal(0, 2, 500)
    v[400] = 120.0
    text = "timestamp,value\n" + "".join(
        f"2025-11-21T{i // 60:02d}:{i % 60:02d}:00-06:00,{x}\n" for i, x in enumerate(v)
    )
    done, target = _run(tmp_path, text)
    assert done.returncode == 0, done.stderr
    rows = [line.split(",") for line in target.read_text().splitlines()]
    assert rows[0] == ["timestamp", "value", "score", "is_anomaly", "detector", "expected"]
    assert len(rows) == 501
    assert rows[401][0] == "2025-11-21T06:40:00-06:00" and rows[401][3] == "true"
    assert rows[401][4] == "deviation" and abs(float(rows[401][5]) - 50) < 2
    assert sum(r[3] == "true" for r in rows[1:]) <= 3
    assert "alerts opened: 1" in done.stderr


def test_detect_command_applies_a_metrics_catalog_settings(tmp_path: Path) -> None:
    t = START_US + np.arange(400, dtype=np.int64) * 60_000_000
    v = 230 + np.random.default_rng(5).normal(0, 1, 400)
    v[300] = 900.0  # beyond mains voltage's physical range
    text = "".join(f"{x / 1e6:.0f},{y}\n" for x, y in zip(t, v, strict=True))
    done, target = _run(tmp_path, text, "--metric", "voltage_v")
    assert done.returncode == 0, done.stderr
    rows = [line.split(",") for line in target.read_text().splitlines()]
    assert rows[301][4] == "range" and float(rows[301][2]) >= 0.75
    done, _ = _run(tmp_path, text, "--metric", "power_w")
    assert done.returncode == 1 and "not scored by the value detectors" in done.stderr


def test_detect_command_names_the_bad_line(tmp_path: Path) -> None:
    done, _ = _run(tmp_path, "t,v\n1,2\n2,abc\n")
    assert done.returncode == 1 and "line 3: value 'abc' is not a number" in done.stderr
    done, _ = _run(tmp_path, "t,v\n1,2\nyesterday,3\n")
    assert done.returncode == 1 and "line 3: time stamp 'yesterday'" in done.stderr


def test_time_stamps_are_iso_or_unix_seconds() -> None:
    assert parse_time("2025-11-17T00:00:00Z") == START_US
    assert parse_time("2025-11-17 00:00:00") == START_US  # no zone: UTC
    assert parse_time("1763337600") == START_US == parse_time("1763337600000")
    with pytest.raises(CitytelError):
        parse_time("soon")
