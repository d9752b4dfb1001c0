"""A fast load generator for benchmarks: paho-mqtt publishing pre-encoded telemetry.

Payloads are built once per gateway; only ``seq`` and ``sent_at`` are spliced in per
message, so the generator spends its CPU on MQTT, not on encoding.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import msgspec
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from devices.contract import topic

_METRICS = ("power_w", "dim_pct", "voltage_v")


@dataclass
class LoadStats:
    published: int = 0
    acked: int = 0


class LoadGenerator:
    """Publishes telemetry of ``readings`` readings x 3 metrics from ``gateways`` gateways."""

    def __init__(
        self,
        port: int,
        *,
        readings: int,
        gateways: int = 20,
        prefix: str = "",
        client_id: str = "bench-load",
        first_seq: int = 1,
    ) -> None:
        self.stats = LoadStats()
        self._readings = readings
        self._gateways = [f"gw-{g:04d}" for g in range(gateways)]
        self._topics = [topic(g, "telemetry", prefix=prefix) for g in self._gateways]
        self._seq = first_seq
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5
        )
        self._client.max_inflight_messages_set(1000)
        self._client.max_queued_messages_set(0)
        self._client.on_publish = self._on_publish
        self._client.connect("127.0.0.1", port)
        self._client.loop_start()
        self._lock = threading.Lock()

    def _on_publish(self, *args: object) -> None:
        self.stats.acked += 1

    def _payload(self, g: int, seq: int, now_ms: int) -> bytes:
        gateway = self._gateways[g]
        readings = [
            {
                "device_id": f"sl-{g:04d}-{i:04d}",
                "ts": now_ms,
                "metrics": {m: float((seq + i + k) % 90) for k, m in enumerate(_METRICS)},
            }
            for i in range(self._readings)
        ]
        return msgspec.json.encode(
            {"gateway_id": gateway, "seq": seq, "sent_at": now_ms, "readings": readings}
        )

    def templates(self) -> list[tuple[bytes, bytes]]:
        """Per gateway, the payload split around seq/sent_at: head, tail."""
        out = []
        for g in range(len(self._gateways)):
            whole = self._payload(g, 424242424242, 1_700_000_000_000).decode()
            head, tail = whole.split('"seq":424242424242,"sent_at":1700000000000')
            out.append((head.encode(), tail.encode()))
        return out

    def run(self, *, seconds: float, rate: float | None = None, max_backlog: int = 20_000) -> None:
        """Publish for ``seconds``: as fast as acks allow, or ``rate`` messages/s."""
        templates = self.templates()
        n = len(templates)
        start = time.monotonic()
        sent = 0
        while (now := time.monotonic()) - start < seconds:
            if rate is not None and sent >= (now - start) * rate:
                time.sleep(0.0005)
                continue
            if sent - self.stats.acked > max_backlog:
                time.sleep(0.001)
                continue
            g = sent % n
            head, tail = templates[g]
            seq = self._seq + sent // n
            body = head + b'"seq":%d,"sent_at":%d' % (seq, time.time_ns() // 1_000_000) + tail
            self._client.publish(self._topics[g], body, qos=1)
            sent += 1
        self.stats.published += sent
        self._seq += sent // n + 1

    def close(self) -> None:
        deadline = time.monotonic() + 30
        while self.stats.acked < self.stats.published and time.monotonic() < deadline:
            time.sleep(0.01)
        self._client.disconnect()
        self._client.loop_stop()
