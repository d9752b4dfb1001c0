"""Soak: the simulated city at a steady rate for a long time; memory at start and end, loss.

    python -m bench.soak [--minutes 10] [--streetlights 2000 --environment 100 --traffic 100
                          --gateways 20 --interval 1]

Starts its own Mosquitto and PostgreSQL (fsync on), runs ``citytel ingest`` as a separate
process, and publishes the simulated city in real time from this process. Samples the
ingester's resident memory every 10 s. At the end it waits for the ingester to catch up
and compares what the simulator published with what the database holds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from bench.ingest_throughput import fresh_database, process, wait_for_session
from citytel.local import LocalMosquitto, LocalPostgres
from simulators.city import build_city
from simulators.run import Simulation


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def soak(args: argparse.Namespace, pg: LocalPostgres, mq: LocalMosquitto) -> None:
    url = fresh_database(pg, "soak")
    env = {
        "CITYTEL_DATABASE_URL": url,
        "CITYTEL_MQTT_URL": mq.url,
        "CITYTEL_CLIENT_ID": "soak",
        "CITYTEL_LOG_LEVEL": "WARNING",
    }
    city = build_city(
        seed=11,
        streetlights=args.streetlights,
        environment=args.environment,
        traffic=args.traffic,
        gateways=args.gateways,
    )
    with process([sys.executable, "-m", "citytel.cli", "ingest"], env) as ingester:
        wait_for_session(url, "citytel ingest")
        samples: list[tuple[float, float]] = []
        start = time.monotonic()
        async with Simulation(
            city, host="127.0.0.1", port=mq.port, seed=11, interval_s=args.interval
        ) as sim:
            while (elapsed := time.monotonic() - start) < args.minutes * 60:
                samples.append((elapsed, rss_mib(ingester.pid)))
                print(
                    f"{elapsed:6.0f} s  ingester RSS {samples[-1][1]:7.1f} MiB  "
                    f"published {sim.stats.messages} messages, {sim.stats.values} values",
                    flush=True,
                )
                await asyncio.sleep(10)
        published = sim.stats
        stored = await asyncio.to_thread(_stored_after_catching_up, url, published.messages)
        end_rss = rss_mib(ingester.pid)
    rate = published.values / (args.minutes * 60)
    print(
        f"machine: {os.cpu_count()} cores; {args.minutes:g} min at {rate:,.0f} values/s "
        f"({published.messages / (args.minutes * 60):,.1f} messages/s)"
    )
    print(f"published: {published.messages} messages, {published.values} values")
    print(f"stored:    {stored[0]} messages, {stored[1]} values, {stored[2]} dead letters")
    print(
        f"lost: {published.values - stored[1]} values; "
        f"ingester RSS first {samples[0][1]:.1f} MiB (at {samples[0][0]:.0f} s), "
        f"after 1 min {_at(samples, 60):.1f} MiB, last {samples[-1][1]:.1f} MiB, "
        f"max {max(s[1] for s in samples):.1f} MiB, after catching up {end_rss:.1f} MiB"
    )


def _stored_after_catching_up(url: str, messages: int) -> tuple[int, int, int]:
    with psycopg.connect(url, autocommit=True) as conn:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            row = conn.execute("SELECT count(*) FROM messages").fetchone()
            if row and row[0] >= messages:
                break
            time.sleep(0.5)
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM metric_values),"
            " (SELECT count(*) FROM dead_letters)"
        ).fetchone()
    assert counts is not None
    return counts[0], counts[1], counts[2]


def _at(samples: list[tuple[float, float]], seconds: float) -> float:
    return next((rss for t, rss in samples if t >= seconds), samples[-1][1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    for name, default in (
        ("streetlights", 2000),
        ("environment", 100),
        ("traffic", 100),
        ("gateways", 20),
    ):
        parser.add_argument(f"--{name}", type=int, default=default)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="citytel-soak-") as tmp:
        Path(tmp).chmod(0o755)
        with LocalPostgres(Path(tmp) / "pg") as pg, LocalMosquitto(Path(tmp) / "mq") as mq:
            asyncio.run(soak(args, pg, mq))


if __name__ == "__main__":
    main()
