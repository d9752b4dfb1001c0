"""Ingest throughput and publish-to-commit latency, against a naive baseline in the same run.

    python -m bench.ingest_throughput [--seconds 30]

Starts its own Mosquitto and PostgreSQL (fsync on), then measures, each in a fresh
database with the ingester as a separate process (``citytel ingest``):
  1. citytel, messages of 50 readings x 3 metrics, published as fast as possible;
  2. citytel at a steady 1,100 messages/s (165,000 values/s): latency p50/p99;
  3. the naive baseline (bench/naive_ingest.py) on the same load as 1;
  4. citytel, single-reading messages (1 x 3 metrics), as fast as possible;
  5. citytel draining a backlog of single-reading messages that the broker queued for its
     session while it was stopped: the receive rate without the load generator's limit.
A value is one metric of one reading (one row); committed counts come from the database.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
from psycopg.rows import TupleRow

from bench.loadgen import LoadGenerator
from citytel.local import LocalMosquitto, LocalPostgres

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        args, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def fresh_database(pg: LocalPostgres, name: str) -> str:
    url = pg.create_database(name)
    subprocess.run(
        [sys.executable, "-m", "citytel.cli", "db", "upgrade"],
        check=True,
        env={**os.environ, "CITYTEL_DATABASE_URL": url, "CITYTEL_LOG_LEVEL": "WARNING"},
    )
    return url


def wait_for_session(url: str, application: str, timeout: float = 20) -> None:
    """Wait until the ingester has connected (its database session appears)."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname ="
                " current_database() AND pid <> pg_backend_pid()"
            ).fetchone()
            if row and row[0] > 0:
                time.sleep(1.0)  # and its MQTT subscription
                return
            time.sleep(0.1)
    raise RuntimeError(f"{application} did not connect")


def citytel_run(
    pg: LocalPostgres,
    mq: LocalMosquitto,
    name: str,
    *,
    readings: int,
    seconds: float,
    rate: float | None = None,
) -> dict[str, float]:
    url = fresh_database(pg, name)
    env = {
        "CITYTEL_DATABASE_URL": url,
        "CITYTEL_MQTT_URL": mq.url,
        "CITYTEL_CLIENT_ID": f"bench-{name}",
        "CITYTEL_LOG_LEVEL": "WARNING",
    }
    with process([sys.executable, "-m", "citytel.cli", "ingest"], env) as proc:
        wait_for_session(url, "citytel ingest")
        load = LoadGenerator(mq.port, readings=readings, client_id=f"load-{name}")
        cpu0, t0 = cpu_seconds(proc.pid), time.time()
        load.run(seconds=seconds, rate=rate)
        t1 = time.time()
        cpu1 = cpu_seconds(proc.pid)
        load.close()
        with psycopg.connect(url, autocommit=True) as conn:
            _wait_all_committed(conn, load.stats.published)
            row = conn.execute(
                'SELECT count(*), coalesce(sum("values"), 0),'
                " percentile_cont(0.5) WITHIN GROUP (ORDER BY committed_at - sent_at),"
                " percentile_cont(0.99) WITHIN GROUP (ORDER BY committed_at - sent_at)"
                " FROM messages WHERE committed_at BETWEEN to_timestamp(%s) AND to_timestamp(%s)",
                (t0 + 3, t1),
            ).fetchone()
            total = conn.execute("SELECT count(*) FROM messages").fetchone()
    assert row is not None and total is not None
    window = t1 - (t0 + 3)
    return {
        "messages/s": row[0] / window,
        "values/s": float(row[1]) / window,
        "p50 ms": row[2].total_seconds() * 1000 if row[2] else float("nan"),
        "p99 ms": row[3].total_seconds() * 1000 if row[3] else float("nan"),
        "published": load.stats.published,
        "committed": total[0],
        "ingester CPU s per s": (cpu1 - cpu0) / (t1 - t0),
        "messages per ingester CPU-s": row[0] / max(1e-9, (cpu1 - cpu0) * window / (t1 - t0)),
    }


def _wait_all_committed(
    conn: psycopg.Connection[TupleRow], published: int, timeout: float = 120
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = conn.execute("SELECT count(*) FROM messages").fetchone()
        if row and row[0] >= published:
            return
        time.sleep(0.2)
    raise RuntimeError("not every published message was committed")


def drain_run(pg: LocalPostgres, mq: LocalMosquitto, *, seconds: float) -> dict[str, float]:
    """Queue single-reading messages for a stopped ingester's session, then let it drain them."""
    url = fresh_database(pg, "drain")
    env = {
        "CITYTEL_DATABASE_URL": url,
        "CITYTEL_MQTT_URL": mq.url,
        "CITYTEL_CLIENT_ID": "bench-drain",
        "CITYTEL_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "citytel.cli", "ingest"]
    with process(command, env):
        wait_for_session(url, "citytel ingest")  # the broker now keeps its session
    load = LoadGenerator(mq.port, readings=1, client_id="load-drain")
    load.run(seconds=seconds)
    load.close()
    with process(command, env) as proc, psycopg.connect(url, autocommit=True) as conn:
        cpu0 = cpu_seconds(proc.pid)
        _wait_all_committed(conn, load.stats.published, timeout=600)
        cpu1 = cpu_seconds(proc.pid)
        row = conn.execute(
            "SELECT count(*), extract(epoch FROM max(committed_at) - min(committed_at))"
            " FROM messages"
        ).fetchone()
    assert row is not None
    span = float(row[1])
    return {
        "messages/s": row[0] / span,
        "values/s": 3 * row[0] / span,
        "published": load.stats.published,
        "committed": row[0],
        "ingester CPU s per s": (cpu1 - cpu0) / span,
    }


def naive_run(pg: LocalPostgres, mq: LocalMosquitto, *, seconds: float) -> dict[str, float]:
    url = pg.create_database("naive")
    with process([sys.executable, "-m", "bench.naive_ingest", str(mq.port), url], {}) as proc:
        time.sleep(2)
        load = LoadGenerator(mq.port, readings=50, client_id="load-naive")
        with psycopg.connect(url, autocommit=True) as conn:
            count = lambda: conn.execute("SELECT count(*) FROM naive_readings").fetchone()[0]  # type: ignore[index]  # noqa: E731
            time.sleep(0.5)
            load.run(seconds=3)
            c0, t0, cpu0 = count(), time.time(), cpu_seconds(proc.pid)
            load.run(seconds=seconds - 3)
            c1, t1, cpu1 = count(), time.time(), cpu_seconds(proc.pid)
        load.close()
    return {
        "values/s": (c1 - c0) / (t1 - t0),
        "messages/s": (c1 - c0) / 150 / (t1 - t0),
        "ingester CPU s per s": (cpu1 - cpu0) / (t1 - t0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--only-drain", action="store_true", help="run scenario 5 alone")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="citytel-bench-") as tmp:
        Path(tmp).chmod(0o755)
        with LocalPostgres(Path(tmp) / "pg") as pg, LocalMosquitto(Path(tmp) / "mq") as mq:
            if args.only_drain:
                result = drain_run(pg, mq, seconds=args.seconds)
                print(
                    "citytel 1x3, queued backlog "
                    + "  ".join(f"{k} {v:,.1f}" for k, v in result.items())
                )
                return
            results = {
                "citytel 50x3, max rate": citytel_run(
                    pg, mq, "max", readings=50, seconds=args.seconds
                ),
                "citytel 50x3, 1100 msg/s": citytel_run(
                    pg, mq, "steady", readings=50, seconds=args.seconds, rate=1100
                ),
                "naive 50x3, max rate": naive_run(pg, mq, seconds=args.seconds),
                "citytel 1x3, max rate": citytel_run(
                    pg, mq, "single", readings=1, seconds=args.seconds
                ),
                "citytel 1x3, queued backlog": drain_run(pg, mq, seconds=args.seconds),
            }
    print(f"machine: {os.cpu_count()} cores; window {args.seconds:g} s per run")
    for name, r in results.items():
        print(f"{name:28s} " + "  ".join(f"{k} {v:,.1f}" for k, v in r.items()))
    ratio = (
        results["citytel 50x3, max rate"]["values/s"] / results["naive 50x3, max rate"]["values/s"]
    )
    print(f"ratio citytel / naive (values/s, 50x3): {ratio:.1f}x")


if __name__ == "__main__":
    main()
