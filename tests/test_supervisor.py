from __future__ import annotations

import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from citytel.local import LocalMosquitto, LocalPostgres, Ports, free_port
from citytel.settings import Settings, broker_from_url
from citytel.supervisor import ingester, local_servers
from devices.errors import ConfigurationError, ServerError
from tests.helpers import ThreadedGateway, numbered_messages
from tests.service import (
    Service,
    count,
    env,
    nothing_listens,
    processes_under,
    rollups_match_raw,
)


def test_configured_servers_are_used_and_none_is_started(tmp_path: Path) -> None:
    settings = Settings(
        database_url="postgresql://db.example/citytel",
        mqtt_url="mqtt://mq.example:1884",
        var_dir=tmp_path / "var",
    )
    with local_servers(settings, {}) as ends:
        assert ends.database_url == "postgresql://db.example/citytel"
        assert ends.mqtt_url == "mqtt://mq.example:1884"
    assert not (tmp_path / "var").exists()


def test_mqtt_urls() -> None:
    b = broker_from_url("mqtts://gw%2F7:s3cret@mq.example")
    assert (b.host, b.port, b.username, b.password, b.tls) == (
        "mq.example",
        8883,
        "gw/7",
        "s3cret",
        True,
    )
    assert broker_from_url("mqtt://127.0.0.1").port == 1883
    with pytest.raises(ConfigurationError):
        broker_from_url("http://127.0.0.1")


def test_settings_come_from_citytel_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYTEL_MAX_PAYLOAD_BYTES", "2048")
    monkeypatch.setenv("CITYTEL_SHARE_GROUP", "ingest")
    settings = Settings()
    assert settings.limits().max_payload_bytes == 2048
    assert settings.share_group == "ingest"


# -- stopping as a service manager does: real processes -------------------------------


def _warm_up(gateway: ThreadedGateway, first: tuple[str, bytes], url: str) -> None:
    """Re-send one message (stored once: same seq) until it is committed: then the
    ingester has subscribed and compiled its kernels, and what follows is mid-stream."""
    for _ in range(240):
        gateway.publish_all([first], rate=1)
        if count(url, "SELECT count(*) FROM messages"):
            return
        time.sleep(0.5)
    raise AssertionError("the ingester stored nothing within 2 minutes")


def _until(url: str, sql: str, at_least: int, *, within_s: float = 60) -> int:
    deadline = time.monotonic() + within_s
    while (n := count(url, sql)) < at_least:
        assert time.monotonic() < deadline, f"{sql}: {n} < {at_least} after {within_s} s"
        time.sleep(0.1)
    return n


MESSAGES = "SELECT count(*) FROM messages"
WAITING_ON_A_LOCK = (
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
)


def test_sigterm_stops_up_mid_stream_cleanly_and_a_restart_loses_nothing(
    server_tmp: Path,
) -> None:
    var = server_tmp / "var"
    environment = env(var_dir=str(var), api_port=str(free_port()), log_level="INFO")
    messages = numbered_messages("gw-up", 1500, prefix="")
    first = Service("up", "--no-simulator", env=environment)
    gateway: ThreadedGateway | None = None
    try:
        found = first.wait_for(r"citytel is up: database (\S+), broker mqtt://127.0.0.1:(\d+)")
        url, mqtt_port = found[1], int(found[2])
        pg_port = int(url.split(":")[-1].split("/")[0])
        gateway = ThreadedGateway(mqtt_port, client_id="gw-up")
        _warm_up(gateway, messages[0], url)
        publishing = threading.Thread(
            target=gateway.publish_all, args=(messages[1:],), kwargs={"rate": 250}
        )
        publishing.start()
        _until(url, MESSAGES, 200)
        assert first.stop(signal.SIGTERM) == 0, first.log
        assert publishing.is_alive(), "the stop did not land mid-stream"
        assert "SIGTERM received: stopping" in first.log
        assert nothing_listens(pg_port, mqtt_port)
        assert processes_under(var) == []  # no orphan broker or database

        second = Service("up", "--no-simulator", env=environment)
        try:
            again = second.wait_for(r"citytel is up: database (\S+), broker (\S+);")
            assert again[1] == url and again[2] == f"mqtt://127.0.0.1:{mqtt_port}"  # same ports
            publishing.join()
            gateway.close()
            gateway = None
            _until(url, MESSAGES, 1500)
            shown = subprocess.run(
                [sys.executable, "-m", "citytel.cli", "status"],
                env=environment,
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert shown.returncode == 0, shown.stdout
            for part in ("database", "broker", "api", "ingester"):
                assert re.search(rf"{part}\s+healthy", shown.stdout), shown.stdout
            assert url in shown.stdout and f"mqtt://127.0.0.1:{mqtt_port}" in shown.stdout
        finally:
            assert second.stop(signal.SIGTERM) == 0, second.log
        assert processes_under(var) == []
    finally:
        if gateway is not None:
            gateway.close(within_s=1)
        first.kill()
    with LocalPostgres(var / "postgres", port=pg_port) as pg:
        assert count(pg.url, "SELECT count(*) FROM metric_values") == 15_000
        assert (
            count(pg.url, "SELECT count(DISTINCT (device, metric, time)) FROM metric_values")
            == 15_000
        )
        assert count(pg.url, MESSAGES) == 1500
        rollups_match_raw(pg.url)


def test_sigterm_stops_ingest_started_in_the_background_by_a_shell(
    database_url: str, mosquitto: LocalMosquitto, topic_prefix: str
) -> None:
    health_port = free_port()
    environment = env(
        database_url=database_url,
        mqtt_url=mosquitto.url,
        client_id=f"bg-{topic_prefix}",
        topic_prefix=topic_prefix,
        health_port=str(health_port),
    )
    messages = numbered_messages("gw-bg", 1500, prefix=topic_prefix)
    # what `citytel ingest &` in a script gets: SIGINT ignored
    ignoring_sigint = 'trap "" INT;'
    first = Service("ingest", env=environment, shell_prefix=ignoring_sigint)
    gateway = ThreadedGateway(mosquitto.port, client_id=f"gw-bg-{topic_prefix}")
    try:
        _warm_up(gateway, messages[0], database_url)
        probes = f"http://127.0.0.1:{health_port}"
        assert httpx.get(f"{probes}/healthz").json() == {"status": "ok"}
        ready = {"status": "ok", "connected": 1, "session_takeovers": 0, "sessions_lost": 0}
        assert httpx.get(f"{probes}/readyz").json() == ready
        publishing = threading.Thread(
            target=gateway.publish_all, args=(messages[1:],), kwargs={"rate": 250}
        )
        publishing.start()
        at_sigint = _until(database_url, MESSAGES, 100)
        first.proc.send_signal(signal.SIGINT)
        _until(database_url, MESSAGES, at_sigint + 200)  # went on ingesting
        assert first.proc.poll() is None
        assert first.stop(signal.SIGTERM) == 0, first.log
        assert publishing.is_alive(), "the stop did not land mid-stream"
        assert "SIGTERM received: stopping" in first.log
        assert nothing_listens(health_port)
        second = Service("ingest", env=environment)
        try:
            publishing.join()
            gateway.close()
            _until(database_url, MESSAGES, 1500)
        finally:
            assert second.stop(signal.SIGTERM) == 0, second.log
    finally:
        first.kill()
    assert count(database_url, "SELECT count(*) FROM metric_values") == 15_000
    distinct = "SELECT count(DISTINCT (device, metric, time)) FROM metric_values"
    assert count(database_url, distinct) == 15_000
    assert count(database_url, MESSAGES) == 1500
    rollups_match_raw(database_url)


def test_a_part_that_dies_stops_the_rest_and_up_exits_non_zero(server_tmp: Path) -> None:
    var = server_tmp / "var"
    service = Service("up", "--no-simulator", env=env(var_dir=str(var), api_port=str(free_port())))
    try:
        found = service.wait_for(r"citytel is up: database (\S+), broker mqtt://127.0.0.1:(\d+)")
        pg_port = int(found[1].split(":")[-1].split("/")[0])
        broker_pid = int((var / "mosquitto" / "mosquitto.pid").read_text())
        os.kill(broker_pid, signal.SIGKILL)
        code = service.proc.wait(60)
    finally:
        service.kill()
    assert code == 1
    assert "Mosquitto exited" in service.log
    assert nothing_listens(pg_port)
    assert processes_under(var) == []


def test_up_after_a_sigkill_stops_the_servers_the_killed_run_left(server_tmp: Path) -> None:
    var = server_tmp / "var"
    environment = env(var_dir=str(var), api_port=str(free_port()))
    first = Service("up", "--no-simulator", env=environment)
    first.wait_for("citytel is up")
    first.proc.kill()  # only citytel: its broker and database are left running
    first.proc.wait()
    assert len(processes_under(var)) == 2
    second = Service("up", "--no-simulator", env=environment)
    try:
        second.wait_for("citytel is up")
        assert "stopping the PostgreSQL left running" in second.log
        assert "stopping the Mosquitto left running" in second.log
    finally:
        assert second.stop(signal.SIGTERM) == 0, second.log
    assert processes_under(var) == []


def test_a_share_group_with_detection_says_so_at_start_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, mqtt = "postgresql://db.example/citytel", "mqtt://mq.example"
    with caplog.at_level(logging.WARNING, logger="citytel"):
        ingester(Settings(share_group="g", detect=False), url, mqtt)
        assert not caplog.records
        ingester(Settings(share_group="g"), url, mqtt)
    assert "share group 'g' with detection on" in caplog.text


def test_sigterm_stops_the_api_and_a_busy_port_fails_it(database_url: str) -> None:
    port = free_port()
    first = Service("api", env=env(database_url=database_url, api_port=str(port)))
    try:
        first.wait_for(rf"API on http://127.0.0.1:{port}")
        assert httpx.get(f"http://127.0.0.1:{port}/readyz").json() == {"status": "ok"}
        second = Service("api", env=env(database_url=database_url, api_port=str(port)))
        assert second.proc.wait(60) == 1
        assert f"the API could not listen on 127.0.0.1:{port}" in second.log
    finally:
        assert first.stop(signal.SIGTERM) == 0, first.log
    assert nothing_listens(port)


@pytest.mark.parametrize(
    ("locked", "abandoned"),
    [(("messages",), False), (("messages", "rollups"), True)],
    ids=["batch-left-unacknowledged", "stop-abandoned"],
)
def test_a_stuck_database_at_stop_loses_nothing(
    database_url: str,
    mosquitto: LocalMosquitto,
    topic_prefix: str,
    locked: tuple[str, ...],
    abandoned: bool,
) -> None:
    """The batch in hand cannot commit: it is left to the broker after a third of the stop
    timeout, then the windows are written; if they cannot be either, the stop is abandoned
    at the timeout (exit 1). Either way the next ingester stores every message once."""
    environment = env(
        database_url=database_url,
        mqtt_url=mosquitto.url,
        client_id=f"stuck-{topic_prefix}",
        topic_prefix=topic_prefix,
        stop_timeout_s="3",
    )
    messages = numbered_messages("gw-stuck", 200, prefix=topic_prefix)
    first = Service("ingest", env=environment)
    gateway = ThreadedGateway(mosquitto.port, client_id=f"gw-stuck-{topic_prefix}")
    try:
        _warm_up(gateway, messages[0], database_url)
        with psycopg.connect(database_url) as blocker:
            # the database stops taking writes: the batch in hand cannot commit
            blocker.execute(f"LOCK TABLE {', '.join(locked)} IN EXCLUSIVE MODE")
            gateway.publish_all(messages[1:], rate=1000)
            _until(database_url, WAITING_ON_A_LOCK, 1)  # the batch is in hand, stuck
            started = time.monotonic()
            code = first.stop(signal.SIGTERM)
            took = time.monotonic() - started
        assert took < 3 + 5  # the deadline, and the loop's own exit
        if abandoned:
            assert code == 1, first.log
            assert "not stopped within 3 s: abandoning" in first.log
        else:
            assert code == 0, first.log
            assert "abandoning" not in first.log
        second = Service("ingest", env=environment)
        try:
            gateway.close()
            _until(database_url, MESSAGES, 200)
        finally:
            assert second.stop(signal.SIGTERM) == 0, second.log
    finally:
        first.kill()
    assert count(database_url, "SELECT count(*) FROM metric_values") == 2000
    assert (
        count(database_url, "SELECT count(DISTINCT (device, metric, time)) FROM metric_values")
        == 2000
    )
    if not abandoned:
        rollups_match_raw(database_url)  # the values left to the broker counted once


def test_local_ports_are_chosen_once_and_remembered(tmp_path: Path) -> None:
    path = tmp_path / "var" / "ports.json"
    first = Ports(path).get("postgres")
    assert Ports(path).get("postgres") == first  # another run, the same port
    broker = Ports(path).get("mosquitto")
    assert broker != first
    assert Ports(path).remembered() == {"postgres": first, "mosquitto": broker}
    assert Ports(path).get("postgres", configured=5999) == 5999  # a setting wins


def test_a_port_taken_by_something_else_is_named(tmp_path: Path) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        with pytest.raises(ServerError, match=f"port {port} for the local Mosquitto is in use"):
            LocalMosquitto(tmp_path / "mosquitto", port=port).start()
