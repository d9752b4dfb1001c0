"""The live ingester turns anomalies in what it stores into episodes in the database."""

from __future__ import annotations

import numpy as np

from citytel.local import LocalMosquitto
from devices.contract import topic
from ingest.ingester import Ingester
from ingest.mqtt import Broker
from tests.helpers import T0_MS, publish, query, reading, telemetry, wait_until

MIN_MS = 60_000


async def test_a_voltage_spike_opens_and_closes_one_deviation_episode(
    database_url: str, mosquitto: LocalMosquitto, topic_prefix: str
) -> None:
    rng = np.random.default_rng(9)
    noise = 120 + rng.normal(0, 1, 150)
    noise[120:122] = 160.0  # a surge on the feeder for two minutes (no daily rhythm to learn)
    t = topic("gw-e", "telemetry", prefix=topic_prefix)
    messages = [
        (
            t,
            telemetry(
                "gw-e",
                i + 1,
                [reading("sl-e", T0_MS + i * MIN_MS, voltage_v=round(float(x), 2))],
            ),
        )
        for i, x in enumerate(noise)
    ]
    ingester = Ingester(
        database_url=database_url,
        broker=Broker(port=mosquitto.port),
        client_id=f"ep-{topic_prefix}",
        topic_prefix=topic_prefix,
        batch_max_wait_s=0.02,
    )
    async with ingester:
        for i in range(0, len(messages), 25):
            await publish(mosquitto, messages[i : i + 25])
            n = min(i + 25, len(messages))
            await wait_until(lambda n=n: _delivered(ingester, n))  # type: ignore[misc]
    rows = await query(
        database_url,
        "SELECT m.name, e.detector, (extract(epoch FROM e.started_at) * 1000)::bigint,"
        " (extract(epoch FROM e.ended_at) * 1000)::bigint, e.peak_score, e.severity, e.observed"
        " FROM episodes e JOIN metrics m ON m.id = e.metric",
    )
    assert len(rows) == 1, rows
    name, detector, start, end, peak, severity, observed = rows[0]
    assert (name, detector) == ("voltage_v", "deviation")
    assert start == T0_MS + 120 * MIN_MS and end == T0_MS + 121 * MIN_MS
    assert peak > 0.99 and severity == "high" and observed == 160.0
    assert ingester.stats.episodes_opened == {"deviation": 1}


async def test_a_lamp_out_at_night_is_a_device_episode(
    database_url: str, mosquitto: LocalMosquitto, topic_prefix: str
) -> None:
    t = topic("gw-l", "telemetry", prefix=topic_prefix)
    messages = []
    for i in range(60):  # ten-minute readings through a night; the lamp fails at reading 30
        power = 60.0 if i < 30 else 0.4
        messages.append(
            (
                t,
                telemetry(
                    "gw-l",
                    i + 1,
                    [
                        reading(
                            "sl-l",
                            T0_MS + i * 10 * MIN_MS,
                            power_w=power,
                            dim_pct=50.0,
                            lamp_on=float(i < 30),
                            ambient_lux=3.0,
                        )
                    ],
                ),
            )
        )
    ingester = Ingester(
        database_url=database_url,
        broker=Broker(port=mosquitto.port),
        client_id=f"lamp-{topic_prefix}",
        topic_prefix=topic_prefix,
        batch_max_wait_s=0.02,
    )
    async with ingester:
        await publish(mosquitto, messages)
        await wait_until(lambda: _delivered(ingester, 60))
    rows = await query(
        database_url,
        "SELECT detector, metric, ended_at IS NULL,"
        " (extract(epoch FROM started_at) * 1000)::bigint FROM episodes"
        " WHERE detector = 'lamp_out'",
    )
    assert rows == [("lamp_out", None, True, T0_MS + 32 * 10 * MIN_MS)]  # after 15 min, still open


async def _delivered(ingester: Ingester, n: int) -> bool:
    return ingester.stats.deliveries >= n
