"""The ``citytel`` command, run as users run it: in a subprocess."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from citytel.local import free_port
from storage.migrate import migrations


def _env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYTEL_")}
    env.update({f"CITYTEL_{k.upper()}": v for k, v in settings.items()})
    return env


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_db_upgrade_migrates_then_does_nothing(empty_database_url: str) -> None:
    env = _env(database_url=empty_database_url)
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-m", "citytel.cli", "db", "upgrade"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert re.search(r"database ready in (postgresql|timescaledb) mode", done.stderr)
    with psycopg.connect(empty_database_url) as conn:
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone() == (
            len(migrations()),
        )


def test_commands_without_their_servers_say_what_to_set() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "citytel.cli", "ingest"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "set CITYTEL_DATABASE_URL" in done.stderr


@pytest.mark.slow
def test_up_runs_everything_until_interrupted(server_tmp: Path) -> None:
    api_port = free_port()
    env = _env(var_dir=str(server_tmp / "var"), api_port=str(api_port), sim_interval_s="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "citytel.cli", "up"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        line = ""
        deadline = time.monotonic() + 90
        assert proc.stderr is not None
        while "citytel is up" not in line:
            line = proc.stderr.readline()
            assert line or proc.poll() is None, "citytel up exited early"
            assert time.monotonic() < deadline
        found = re.search(r"database (\S+), broker mqtt://127.0.0.1:(\d+)", line)
        assert found, line
        database_url, mqtt_port = found[1], int(found[2])
        assert httpx.get(f"http://127.0.0.1:{api_port}/healthz").json() == {"status": "ok"}
        assert httpx.get(f"http://127.0.0.1:{api_port}/readyz").status_code == 200
        with psycopg.connect(database_url, autocommit=True) as conn:
            while True:  # the simulated city's readings arrive
                row = conn.execute("SELECT count(DISTINCT device) FROM metric_values").fetchone()
                if row and row[0] == 42:
                    break
                assert time.monotonic() < deadline
                time.sleep(0.3)
            while True:  # their online statuses (a batch of their own: may come a bit later)
                status = conn.execute("SELECT count(*) FROM gateways WHERE status = 'online'")
                if status.fetchone() == (3,):
                    break
                assert time.monotonic() < deadline
                time.sleep(0.3)
            listening = conn.execute(  # the alert dispatcher waits for the outbox's NOTIFY
                "SELECT count(*) FROM pg_stat_activity WHERE query = 'LISTEN citytel_alerts'"
            )
            assert listening.fetchone() == (1,)
        pg_port = int(database_url.split(":")[-1].split("/")[0])
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C does: to the whole process group
        code = proc.wait(30)
        if proc.stderr is not None:
            proc.stderr.close()
    assert code == 0
    assert not _listening(api_port) and not _listening(mqtt_port) and not _listening(pg_port)


def test_status_says_when_nothing_runs(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "citytel.cli", "status"],
        env=_env(var_dir=str(tmp_path / "var")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3
    assert f"citytel up is not running on {tmp_path / 'var'}" in done.stdout


def test_status_finds_an_unhealthy_part(tmp_path: Path) -> None:
    """A run whose API and broker have gone: status names them, and exits 1."""
    from citytel.status import claimed, published

    var = tmp_path / "var"
    gone = free_port()
    with (
        claimed(var),
        published(
            var,
            database_url="postgresql://citytel@127.0.0.1:1/citytel",
            mqtt_url=f"mqtt://127.0.0.1:{gone}",
            api_url=f"http://127.0.0.1:{gone}",
        ) as board,
    ):
        board.update(ingester={"messages": 3, "values": 9, "held": 0})
        # another process's view: the lock is held by "citytel up" (this test)
        code = subprocess.run(
            [sys.executable, "-m", "citytel.cli", "status"],
            env=_env(var_dir=str(var)),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert code.returncode == 1, code.stdout
    for part in ("database", "broker", "api"):
        assert re.search(rf"{part}\s+UNHEALTHY", code.stdout), code.stdout
    assert re.search(r"ingester\s+healthy.*stored 3 messages, 9 values", code.stdout)
    assert not (var / "citytel.json").exists()  # gone with the run
