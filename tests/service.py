"""Helpers for tests that run ``citytel`` commands as real processes and stop them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg

from citytel.local import listening

FROM_RAW = """
SELECT device, metric, floor(extract(epoch FROM time) / %(w)s)::bigint, count(*)
FROM metric_values GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
"""
FROM_ROLLUPS = """
SELECT device, metric, (extract(epoch FROM window_start) / %(w)s)::bigint, count::bigint
FROM rollups WHERE width_s = %(w)s ORDER BY 1, 2, 3
"""


def env(**settings: str) -> dict[str, str]:
    """The environment without our settings, then ``settings`` as ``CITYTEL_*``."""
    out = {k: v for k, v in os.environ.items() if not k.startswith("CITYTEL_")}
    out.update({f"CITYTEL_{k.upper()}": v for k, v in settings.items()})
    return out


class Service:
    """A ``citytel`` command in a process of its own; its log is collected as it comes."""

    def __init__(self, *args: str, env: dict[str, str], shell_prefix: str = "") -> None:
        command = [sys.executable, "-m", "citytel.cli", *args]
        if shell_prefix:  # through a shell, as `exec`: the same process, set up by the shell
            command = ["sh", "-c", f'{shell_prefix} exec "$@"', "sh", *command]
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            command, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        with self.proc.stderr:
            for line in self.proc.stderr:
                self.lines.append(line)

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, *, within_s: float = 90) -> re.Match[str]:
        """The first log line matching ``pattern``, once it is there."""
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            for line in list(self.lines):
                found = re.search(pattern, line)
                if found:
                    return found
            if self.proc.poll() is not None and not self._reader.is_alive():
                raise AssertionError(f"exited ({self.proc.returncode}) first:\n{self.log}")
            time.sleep(0.05)
        raise AssertionError(f"no {pattern!r} within {within_s} s:\n{self.log}")

    def stop(self, sig: int, *, within_s: float = 60) -> int:
        """Send ``sig`` and wait for the exit code."""
        self.proc.send_signal(sig)
        code = self.proc.wait(within_s)
        self._reader.join(5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 9)
            self.proc.wait()
        self._reader.join(5)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[-1].split()[0] != "Z"


def processes_under(path: Path) -> list[str]:
    """Command lines of the processes that name ``path`` (the servers of a var dir)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(path) in command and alive(int(entry.name)):
            found.append(command)
    return found


def nothing_listens(*ports: int) -> bool:
    return not any(listening(p) for p in ports)


def count(url: str, sql: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(sql).fetchone()  # type: ignore[arg-type]
    assert row is not None
    return int(row[0])


def rollups_match_raw(url: str) -> None:
    """Every rollup bucket counts exactly the raw values in it, for every width."""
    with psycopg.connect(url, autocommit=True) as conn:
        for width in (60, 900, 3600):
            raw = conn.execute(FROM_RAW, {"w": width}).fetchall()
            rolled = conn.execute(FROM_ROLLUPS, {"w": width}).fetchall()
            assert raw, "no values"
            assert rolled == raw, f"width {width}: rollups differ from the raw values"
