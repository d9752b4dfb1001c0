"""``citytel status``: which parts of a ``citytel up`` run here, where, and whether healthy.

``citytel up`` holds a lock on ``var/citytel.lock`` while it runs (the kernel drops it when
the process dies, however it dies) and keeps ``var/citytel.json`` up to date: its process
id, the URLs of its servers and, every few seconds, what the ingester has stored.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import psycopg

from citytel.settings import broker_from_url
from devices.errors import ServerError

STALE_S = 30.0
"""The ingester is unhealthy when ``citytel up`` has not said how it is for this long."""


@contextlib.contextmanager
def claimed(var_dir: Path) -> Iterator[None]:
    """Hold ``var_dir`` for this process: a second ``citytel up`` on it fails at once."""
    var_dir.mkdir(parents=True, exist_ok=True)
    with (var_dir / "citytel.lock").open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ServerError(f"citytel is already running on {var_dir} (citytel status)") from None
        yield


def running(var_dir: Path) -> bool:
    """Whether a ``citytel up`` holds ``var_dir``."""
    try:
        with (var_dir / "citytel.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


class Published:
    """``var/citytel.json`` while ``citytel up`` runs."""

    def __init__(self, path: Path, state: dict[str, Any]) -> None:
        self.path = path
        self.state = state

    def update(self, **parts: Any) -> None:
        self.state.update(parts, updated_at=time.time())
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=2) + "\n")
        tmp.replace(self.path)


@contextlib.contextmanager
def published(var_dir: Path, **urls: str) -> Iterator[Published]:
    """Say where the parts are for the duration (``citytel status`` reads it)."""
    state = {"pid": os.getpid(), "started_at": time.time(), **urls}
    out = Published(var_dir / "citytel.json", state)
    out.update()
    try:
        yield out
    finally:
        out.path.unlink(missing_ok=True)


# -- checking ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Part:
    name: str
    where: str
    healthy: bool
    detail: str


def check(var_dir: Path) -> list[Part] | None:
    """Each part's health; None when no ``citytel up`` runs on ``var_dir``."""
    path = var_dir / "citytel.json"
    if not running(var_dir):
        return None
    if not path.exists():
        return [Part("citytel up", str(var_dir), False, "starting (or stopping)")]
    state = json.loads(path.read_text())
    parts = [
        _database(state["database_url"]),
        _broker(state["mqtt_url"]),
        _api(state["api_url"]),
        _ingester(state),
    ]
    return parts


def _database(url: str) -> Part:
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return Part("database", url, False, str(exc).strip().splitlines()[0])
    return Part("database", url, True, "answers")


def _broker(url: str) -> Part:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    broker = broker_from_url(url)
    answers: list[Any] = []
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    client.on_connect = lambda _c, _u, _f, code, _p: answers.append(code)
    if broker.username:
        client.username_pw_set(broker.username, broker.password)
    try:
        client.connect(broker.host, broker.port, keepalive=5)
        deadline = time.monotonic() + 3
        while not answers and time.monotonic() < deadline:
            client.loop(0.1)
        client.disconnect()
    except OSError as exc:
        return Part("broker", url, False, str(exc))
    if not answers:
        return Part("broker", url, False, "no CONNACK within 3 s")
    if answers[0].is_failure:
        return Part("broker", url, False, f"refused: {answers[0]}")
    return Part("broker", url, True, "accepts sessions")


def _api(url: str) -> Part:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=3) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return Part("api", url, False, json.loads(exc.read()).get("status", str(exc)))
    except OSError as exc:
        return Part("api", url, False, str(exc))
    return Part("api", url, body.get("status") == "ok", f"/readyz: {body.get('status')}")


def _ingester(state: dict[str, Any]) -> Part:
    stats = state.get("ingester")
    age = time.time() - float(state.get("updated_at", 0))
    if not stats:
        return Part("ingester", "-", False, "not started")
    detail = (
        f"stored {stats['messages']} messages, {stats['values']} values,"
        f" holds {stats['held']} ({age:.0f} s ago)"
    )
    if stats.get("failed"):
        return Part("ingester", "-", False, f"failed: {stats['failed']}")
    return Part("ingester", "-", age < STALE_S, detail)


def show(var_dir: Path, out: TextIO) -> int:
    """Print the parts' health; 0 if all are healthy, 1 if some are not, 3 if not running."""
    parts = check(var_dir)
    if parts is None:
        print(f"citytel up is not running on {var_dir}", file=out)
        return 3
    print(f"citytel up running on {var_dir}", file=out)
    for p in parts:
        mark = "healthy" if p.healthy else "UNHEALTHY"
        print(f"  {p.name:<9} {mark:<9} {p.where:<48} {p.detail}", file=out)
    return 0 if all(p.healthy for p in parts) else 1
