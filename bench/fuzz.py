"""Live fuzzing: generated messages through a real broker into a real ingester; the books
must balance.

    python -m bench.fuzz [--messages 100000] [--seed 1] [--good-rate 20]

Starts a Mosquitto and a PostgreSQL of its own, an ingester, and a well-behaved gateway
that publishes numbered telemetry at ``--good-rate`` messages/s throughout. Then it
publishes ``--messages`` messages drawn by ``bench.fuzz_messages`` (valid, almost valid
and hostile, every topic shape, JSON and MessagePack) at QoS 1 and checks:

- every message the broker acknowledged is accounted for: its identity is in
  ``messages``, or it (or, for a device of an announcement, that device) is in
  ``dead_letters`` with a reason, or it is a valid status now on its gateway, or every
  device it announced is registered;
- the ingester never exited;
- every message of the well-behaved gateway is stored once, and its messages kept being
  committed throughout (the longest gap between two commits is printed).

``run`` is what tests/fuzz/test_live.py calls, with fewer messages.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import logging
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import msgspec
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from bench.fuzz_messages import generate, render
from citytel.local import LocalMosquitto, LocalPostgres
from devices.contract import DEVICES, STATUS, TELEMETRY_MSGPACK, parse_topic, topic
from ingest.config import Broker, IngesterConfig
from ingest.ingester import Ingester
from ingest.limits import Limits
from storage.database import connect
from storage.migrate import upgrade

GOOD = "fz-good"
WINDOW = 500
"""Publishes in flight at once."""
STALL_S = 60.0
"""No delivery handled for this long: the ingester is stuck."""


@dataclass
class Report:
    published: int = 0
    acknowledged: int = 0
    unaccounted: list[tuple[str, bytes, str]] = field(default_factory=list)
    ingester_exited: str = ""
    """Why the ingester stopped, if it did (it must not)."""
    stalled: bool = False
    good_sent: int = 0
    good_stored: int = 0
    good_distinct: int = 0
    good_longest_gap_s: float = 0.0
    dead_letters: Counter[str] = field(default_factory=Counter)
    messages_stored: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def balanced(self) -> bool:
        return (
            not self.unaccounted
            and not self.ingester_exited
            and not self.stalled
            and self.good_stored == self.good_distinct == self.good_sent
        )


class GoodGateway:
    """A well-behaved gateway in a thread of its own: numbered telemetry at ``rate``/s."""

    def __init__(self, port: int, *, prefix: str, rate: float) -> None:
        self.sent = 0
        self._prefix, self._rate = prefix, rate
        self._stop = threading.Event()
        self._client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        self._client.max_queued_messages_set(0)
        self._client.connect("127.0.0.1", port)
        self._client.loop_start()
        self._thread = threading.Thread(target=self._run, name="good-gateway", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        start = time.monotonic()
        while not self._stop.is_set():
            seq = self.sent + 1
            now_ms = int(time.time() * 1000)
            payload = msgspec.json.encode(
                {
                    "gateway_id": GOOD,
                    "seq": seq,
                    "sent_at": now_ms,
                    "readings": [
                        {"device_id": "fz-good-1", "ts": now_ms, "metrics": {"power_w": 40.0}}
                    ],
                }
            )
            info = self._client.publish(
                topic(GOOD, "telemetry", prefix=self._prefix), payload, qos=1
            )
            info.wait_for_publish(timeout=30)
            self.sent = seq
            self._stop.wait(max(0.0, start + seq / self._rate - time.monotonic()))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
        self._client.disconnect()
        self._client.loop_stop()


async def _publish(port: int, messages: list[tuple[str, bytes]]) -> int:
    """Publish at QoS 1, ``WINDOW`` at a time; how many the broker acknowledged."""
    acknowledged = 0
    quiet = logging.getLogger("bench.fuzz.mqtt")  # aiomqtt warns of every pending publish
    quiet.setLevel(logging.ERROR)
    async with aiomqtt.Client(
        "127.0.0.1",
        port,
        protocol=aiomqtt.ProtocolVersion.V5,
        max_inflight_messages=WINDOW,
        logger=quiet,
    ) as client:
        for start in range(0, len(messages), WINDOW):
            chunk = messages[start : start + WINDOW]
            done = await asyncio.gather(
                *(client.publish(t, p, qos=1) for t, p in chunk), return_exceptions=True
            )
            acknowledged += sum(not isinstance(d, BaseException) for d in done)
    return acknowledged


def _digests(payload: bytes) -> set[str]:
    """md5 of what a dead letter may keep of ``payload``: all of it, or its start."""
    cuts = {len(payload), 1024, Limits().dead_letter_payload_bytes}
    return {hashlib.md5(payload[:n]).hexdigest() for n in cuts}


@dataclass(frozen=True, slots=True)
class Books:
    identities: set[tuple[str, int]]
    dead: set[tuple[str, str]]
    devices: set[str]
    statuses: set[str]

    def dead_lettered(self, where: str, payload: bytes) -> bool:
        """Whether a dead letter on ``where`` holds ``payload`` (or its start)."""
        return any((where, d) in self.dead for d in _digests(payload))

    def why_unaccounted(self, where: str, payload: bytes, prefix: str) -> str | None:
        """None when the message is accounted for; otherwise what is missing."""
        if self.dead_lettered(where, payload):
            return None
        parsed = parse_topic(where, prefix=prefix)
        if parsed is None:
            return "not a v1 topic, and no dead letter"
        gateway, channel = parsed
        if channel == STATUS:
            ok = payload.strip() in (b"online", b"offline") and gateway in self.statuses
            return None if ok else "status neither stored nor dead-lettered"
        body = _decode(payload, binary=channel == TELEMETRY_MSGPACK)
        if channel == DEVICES:
            items = body.get("devices") if isinstance(body, dict) else None
            if not isinstance(items, list):
                return "announcement neither stored nor dead-lettered"
            for item in items:
                registered = isinstance(item, dict) and item.get("device_id") in self.devices
                if not registered and (where, _digest_of(item)) not in self.dead:
                    return f"announced device neither registered nor dead-lettered: {item!r:.200}"
            return None
        if isinstance(body, dict) and (body.get("gateway_id"), body.get("seq")) in self.identities:
            return None
        return "telemetry neither stored nor dead-lettered"


def _decode(payload: bytes, *, binary: bool) -> Any:
    try:
        return (msgspec.msgpack.decode if binary else msgspec.json.decode)(payload)
    except (msgspec.DecodeError, ValueError, RecursionError):
        return None


def _digest_of(item: Any) -> str:
    try:
        encoded = msgspec.json.encode(item)
    except (TypeError, ValueError, msgspec.EncodeError):
        encoded = repr(item).encode()
    return hashlib.md5(encoded[: Limits().dead_letter_payload_bytes]).hexdigest()


async def read_books(database_url: str) -> tuple[Books, Counter[str], int]:
    conn = await connect(database_url, autocommit=True)
    try:

        async def rows(sql: str) -> list[Any]:
            return await (await conn.execute(sql)).fetchall()

        identities = {
            (g, s)
            for g, s in await rows(
                "SELECT g.gateway_id, m.seq FROM messages m JOIN gateways g ON g.id = m.gateway"
            )
        }
        dead = {
            (t, d) for t, d in await rows("SELECT DISTINCT topic, md5(payload) FROM dead_letters")
        }
        devices = {d for (d,) in await rows("SELECT device_id FROM devices")}
        statuses = {
            g for (g,) in await rows("SELECT gateway_id FROM gateways WHERE status_at IS NOT NULL")
        }
        reasons = Counter(
            {r: n for r, n in await rows("SELECT reason, count(*) FROM dead_letters GROUP BY 1")}
        )
        return Books(identities, dead, devices, statuses), reasons, len(identities)
    finally:
        await conn.close()


async def _good_books(database_url: str) -> tuple[int, int, float]:
    """(messages of the good gateway stored, distinct seqs, longest gap between commits)."""
    conn = await connect(database_url, autocommit=True)
    try:
        cur = await conn.execute(
            "SELECT count(*), count(DISTINCT m.seq),"
            " coalesce(extract(epoch FROM max(gap)), 0) FROM ("
            "  SELECT m.seq,"
            "   m.committed_at - lag(m.committed_at) OVER (ORDER BY m.committed_at) AS gap"
            "  FROM messages m JOIN gateways g ON g.id = m.gateway WHERE g.gateway_id = %s) m",
            (GOOD,),
        )
        n, distinct, gap = await cur.fetchone() or (0, 0, 0)
        return int(n), int(distinct), float(gap)
    finally:
        await conn.close()


async def run(
    *,
    database_url: str,
    broker_port: int,
    prefix: str,
    messages: int,
    seed: int = 1,
    good_rate: float = 20.0,
) -> Report:
    """Publish ``messages`` generated messages and balance the books (see the module doc)."""
    report = Report()
    t0 = time.monotonic()
    numbers = itertools.count(1)
    fuzz = [render(d, numbers, prefix=prefix) for d in generate(messages, seed=seed)]
    report.published = len(fuzz)
    report.seconds["generate"] = time.monotonic() - t0
    ingester = Ingester(
        database_url=database_url,
        broker=Broker(port=broker_port),
        config=IngesterConfig(client_id=f"fuzz-{prefix}", topic_prefix=prefix),
    )
    async with ingester:
        exited = asyncio.create_task(ingester.wait())
        good = GoodGateway(broker_port, prefix=prefix, rate=good_rate)
        try:
            t1 = time.monotonic()
            report.acknowledged = await _publish(broker_port, fuzz)
            report.seconds["publish"] = time.monotonic() - t1
        finally:
            await asyncio.to_thread(good.stop)
        report.good_sent = good.sent
        expected = report.acknowledged + good.sent
        progress = (ingester.stats.deliveries, time.monotonic())
        while ingester.stats.deliveries < expected and not exited.done():
            await asyncio.wait({exited}, timeout=0.2)
            if ingester.stats.deliveries != progress[0]:
                progress = (ingester.stats.deliveries, time.monotonic())
            elif time.monotonic() - progress[1] > STALL_S:
                report.stalled = True
                break
        report.seconds["ingest"] = time.monotonic() - t1
        if exited.done():
            failure = exited.exception()
            report.ingester_exited = repr(failure) if failure else "its loop returned"
        exited.cancel()
    books, report.dead_letters, report.messages_stored = await read_books(database_url)
    for where, payload in fuzz:
        why = books.why_unaccounted(where, payload, prefix)
        if why is not None:
            report.unaccounted.append((where, payload[:300], why))
    report.good_stored, report.good_distinct, report.good_longest_gap_s = await _good_books(
        database_url
    )
    return report


def print_report(report: Report) -> None:
    s = report.seconds
    print(
        f"generated {report.published} messages in {s['generate']:.1f} s;"
        f" broker acknowledged {report.acknowledged} in {s['publish']:.1f} s"
        f" ({report.acknowledged / s['publish']:.0f} messages/s);"
        f" ingested within {s['ingest']:.1f} s"
        f" ({report.acknowledged / s['ingest']:.0f} messages/s)"
    )
    print(f"telemetry messages stored: {report.messages_stored}; dead letters by reason:")
    for reason, n in report.dead_letters.most_common():
        print(f"  {reason:20} {n}")
    print(
        f"well-behaved gateway: sent {report.good_sent}, stored {report.good_stored}"
        f" ({report.good_distinct} distinct), longest gap between commits"
        f" {report.good_longest_gap_s:.2f} s"
    )
    print(f"ingester exited: {report.ingester_exited or 'no'}; stalled: {report.stalled}")
    print(f"unaccounted: {len(report.unaccounted)}")
    for where, payload, why in report.unaccounted[:20]:
        print(f"  {where!r:.120} {payload!r:.200}: {why}")
    print("books balance" if report.balanced else "BOOKS DO NOT BALANCE")


async def _migrated(url: str) -> None:
    conn = await connect(url, autocommit=True)
    try:
        await upgrade(conn)
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--good-rate", type=float, default=20.0, help="messages/s")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="citytel-fuzz-") as tmp:
        Path(tmp).chmod(0o755)
        with (
            LocalPostgres(Path(tmp) / "pg", fsync=False) as pg,
            LocalMosquitto(Path(tmp) / "mq") as mq,
        ):
            asyncio.run(_migrated(pg.url))
            report = asyncio.run(
                run(
                    database_url=pg.url,
                    broker_port=mq.port,
                    prefix="",
                    messages=args.messages,
                    seed=args.seed,
                    good_rate=args.good_rate,
                )
            )
    print_report(report)
    return 0 if report.balanced else 1


if __name__ == "__main__":
    raise SystemExit(main())
