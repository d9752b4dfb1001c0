"""Drain throughput per payload format, against contract v1 in the same run.

    python -m bench.formats_drain [--messages 4000] [--uplinks 40000]

For each format a backlog is queued in the broker for a stopped ingester's session
(``citytel ingest`` as its own process, fsync on), then the ingester drains it; the
rate is committed values (or messages) over the span of commit times. Messages of 50
readings x 3 metrics for contract v1 (the baseline, and issue 16's "drain 50x3"),
Sparkplug B and SenML; one uplink of 1 reading x 3 metrics per message for ChirpStack and
The Things Stack (reported in messages/s). The payloads are made by the simulator's own
encoders (simulators/protocols.py) before the clock starts.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import msgspec
import paho.mqtt.client as paho
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from bench.ingest_throughput import fresh_database, process, wait_for_session
from citytel.local import LocalMosquitto, LocalPostgres
from devices.contract import Reading, Telemetry, topic
from simulators.protocols import encoder_for

_METRICS = ("temperature_c", "humidity_pct", "pm10_ugm3")
_T0 = 1_763_762_999_000


def _telemetry(gateway: str, seq: int, readings: int, devices: int) -> Telemetry:
    ts = _T0 + seq * 1000
    rs = [
        Reading(f"{gateway}-d{(seq * readings + i) % devices:03d}", ts,
                {m: float((seq + i + k) % 90) for k, m in enumerate(_METRICS)})
        for i in range(readings)
    ]  # fmt: skip
    return Telemetry(gateway, seq, rs, ts)


def backlog(fmt: str, messages: int, readings: int) -> tuple[list[tuple[str, bytes]], int]:
    """(topic, payload) to queue, births first, and the values they carry."""
    gateways = [f"gw-{g:02d}" for g in range(10)]
    devices = 50
    out: list[tuple[str, bytes]] = []
    for g in gateways:
        names = {f"{g}-d{i:03d}": list(_METRICS) for i in range(devices)}
        enc = None if fmt == "contract" else encoder_for(fmt, g, names)
        if enc is not None:
            out += enc.birth(_T0)
        for seq in range(1, messages // len(gateways) + 1):
            message = _telemetry(g, seq, readings, devices)
            if enc is None:
                out.append((topic(g, "telemetry"), msgspec.json.encode(message)))
            else:
                out += enc.encode(message)
    return out, len(gateways) * (messages // len(gateways)) * readings * len(_METRICS)


def publish(port: int, messages: list[tuple[str, bytes]]) -> None:
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id="bench-formats", protocol=paho.MQTTv5
    )
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    infos = [client.publish(t, p, qos=1) for t, p in messages]
    for info in infos:
        info.wait_for_publish(60)
    client.disconnect()
    client.loop_stop()


def drain(
    pg: LocalPostgres, mq: LocalMosquitto, fmt: str, messages: int, readings: int
) -> dict[str, float]:
    url = fresh_database(pg, f"drain_{fmt}_{readings}")
    env = {
        "CITYTEL_DATABASE_URL": url,
        "CITYTEL_MQTT_URL": mq.url,
        "CITYTEL_CLIENT_ID": f"bench-{fmt}",
        "CITYTEL_LOG_LEVEL": "WARNING",
        "CITYTEL_FORMATS": "" if fmt == "contract" else fmt,
    }
    command = [sys.executable, "-m", "citytel.cli", "ingest"]
    with process(command, env):
        wait_for_session(url, "citytel ingest")
    queued, values = backlog(fmt, messages, readings)
    publish(mq.port, queued)
    with process(command, env), psycopg.connect(url, autocommit=True) as conn:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            row = conn.execute("SELECT count(*) FROM metric_values").fetchone()
            if row and row[0] >= values:
                break
            time.sleep(0.2)
        row = conn.execute(
            "SELECT count(*), extract(epoch FROM max(committed_at) - min(committed_at))"
            " FROM messages"
        ).fetchone()
        stored = conn.execute("SELECT count(*) FROM metric_values").fetchone()
    assert row is not None and stored is not None
    span = float(row[1]) or 1e-9
    return {"values/s": stored[0] / span, "messages/s": row[0] / span,
            "values": stored[0], "expected": values}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=4000, help="50x3 messages per format")
    parser.add_argument("--uplinks", type=int, default=40000, help="LoRaWAN uplinks per format")
    args = parser.parse_args()
    plan = [("contract", args.messages, 50), ("senml", args.messages, 50),
            ("sparkplug", args.messages, 50), ("contract", args.uplinks, 1),
            ("chirpstack", args.uplinks, 1), ("tts", args.uplinks, 1)]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="citytel-bench-") as tmp:
        Path(tmp).chmod(0o755)
        with LocalPostgres(Path(tmp) / "pg") as pg, LocalMosquitto(Path(tmp) / "mq") as mq:
            results = {f"{fmt} {r}x3": drain(pg, mq, fmt, n, r) for fmt, n, r in plan}
    print(f"machine: {os.cpu_count()} cores; drained backlogs")
    for name, r in results.items():
        print(f"{name:18s} " + "  ".join(f"{k} {v:,.0f}" for k, v in r.items()))
    base50, base1 = results["contract 50x3"]["values/s"], results["contract 1x3"]["messages/s"]
    for name, r in results.items():
        if name.endswith("50x3") and not name.startswith("contract"):
            print(f"ratio {name} / contract 50x3 (values/s): {r['values/s'] / base50:.2f}")
        if name.endswith("1x3") and not name.startswith("contract"):
            print(f"ratio {name} / contract 1x3 (messages/s): {r['messages/s'] / base1:.2f}")


if __name__ == "__main__":
    main()
