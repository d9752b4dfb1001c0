"""``citytel simulate``: modes from its arguments, and a backfill run from the shell."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from citytel.local import LocalMosquitto
from citytel.settings import Settings
from simulators.cli import add_arguments, plan

NOW = datetime(2025, 11, 20, 12, tzinfo=UTC)


def _plan(*argv: str) -> tuple[datetime | None, datetime | None, float]:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return plan(parser.parse_args(list(argv)), Settings(), now=NOW)


def test_modes() -> None:
    assert _plan() == (None, None, 1.0)  # live, real time
    assert _plan("--speed", "1") == (None, None, 1.0)
    assert _plan("--backfill") == (NOW - timedelta(days=1), NOW, 0.0)
    assert _plan("--days", "7") == (NOW - timedelta(days=7), NOW, 0.0)
    assert _plan("--speed", "60") == (NOW - timedelta(days=1), NOW, 60.0)  # a replay
    start = datetime(2025, 11, 1, tzinfo=UTC)
    assert _plan("--start", "2025-11-01T00:00:00Z", "--days", "2") == (
        start,
        start + timedelta(days=2),
        0.0,
    )
    assert _plan("--start", "2025-11-01", "--end", "2025-11-03T00:00:00+00:00") == (
        start,
        start + timedelta(days=2),
        0.0,
    )
    assert _plan("--start", "2025-11-01", "--speed", "3600")[1:] == (NOW, 3600.0)
    with pytest.raises(SystemExit):
        _plan("--start", "2025-11-03", "--end", "2025-11-01")
    with pytest.raises(SystemExit):
        _plan("--start", "2025-11-01", "--end", "2025-11-03", "--days", "1")


def test_a_backfill_from_the_command_line_writes_the_ground_truth(
    mosquitto: LocalMosquitto, topic_prefix: str, tmp_path: Path
) -> None:
    truth = tmp_path / "truth.jsonl"
    env = {
        **os.environ,
        "CITYTEL_MQTT_URL": mosquitto.url,
        "CITYTEL_TOPIC_PREFIX": topic_prefix,
        "CITYTEL_LOG_LEVEL": "INFO",
    }
    command = [sys.executable, "-m", "citytel.cli", "simulate", "--start", "2025-11-18"]
    command += ["--days", "1", "--interval", "300", "--streetlights", "40", "--environment"]
    command += ["10", "--traffic", "10", "--gateways", "2", "--fault-rate", "2"]
    command += ["--ground-truth", str(truth), "--seed", "3", "--msgpack"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "simulated 100% of the range" in done.stderr  # plain log lines, not a terminal
    lines = [json.loads(x) for x in truth.read_text().splitlines()]
    assert len(lines) > 50
    assert all(
        list(x) == ["fault", "gateway_id", "device_id", "metrics", "start", "end"] for x in lines
    )
    assert f"{len(lines)} faults in the ground truth" in done.stderr
    # published: 288 intervals x 2 gateways, less outages, plus duplicates
    published = int(done.stderr.split("published ")[1].split(" messages")[0].replace(",", ""))
    assert published > 500
