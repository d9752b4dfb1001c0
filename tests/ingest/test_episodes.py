"""The live ingester turns anomalies in what it stores into episodes in the database."""

from __future__ import annotations

import time

import numpy as np

from citytel.local import LocalMosquitto
from devices.contract import topic
from ingest.ingester import Ingester
from processing.config import VALUES
from tests.helpers import (
    T0_MS,
    delivered,
    make_ingester,
    publish,
    query,
    reading,
    telemetry,
    wait_until,
)

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
    ingester = make_ingester(database_url, mosquitto, topic_prefix, "ep", batch_max_wait_s=0.02)
    async with ingester:
        for i in range(0, len(messages), 25):
            await publish(mosquitto, messages[i : i + 25])
            n = min(i + 25, len(messages))
            await wait_until(lambda n=n: delivered(ingester, n))  # type: ignore[misc]
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
    ingester = make_ingester(database_url, mosquitto, topic_prefix, "lamp", batch_max_wait_s=0.02)
    async with ingester:
        await publish(mosquitto, messages)
        await wait_until(lambda: delivered(ingester, 60))
    rows = await query(
        database_url,
        "SELECT detector, metric, ended_at IS NULL,"
        " (extract(epoch FROM started_at) * 1000)::bigint FROM episodes"
        " WHERE detector = 'lamp_out'",
    )
    assert rows == [("lamp_out", None, True, T0_MS + 32 * 10 * MIN_MS)]  # after 15 min, still open


def _voltage(gateway: str, device: str, prefix: str, values: list[float], seq0: int = 0):  # type: ignore[no-untyped-def]
    t = topic(gateway, "telemetry", prefix=prefix)
    return [
        (
            t,
            telemetry(
                gateway, seq0 + i + 1, [reading(device, T0_MS + (seq0 + i) * MIN_MS, voltage_v=x)]
            ),
        )
        for i, x in enumerate(values)
    ]


def _ingester(database_url: str, mosquitto: LocalMosquitto, prefix: str, **kw: float) -> Ingester:
    return make_ingester(database_url, mosquitto, prefix, "cp", batch_max_wait_s=0.02, **kw)


async def test_a_restart_keeps_baselines_and_does_not_reopen_an_episode(
    database_url: str, mosquitto: LocalMosquitto, topic_prefix: str
) -> None:
    rng = np.random.default_rng(3)
    calm = [round(float(x), 2) for x in 120 + rng.normal(0, 1, 180)]
    first = _voltage("gw-c", "sl-c", topic_prefix, [*calm[:130], 160.0, 161.0])
    async with _ingester(database_url, mosquitto, topic_prefix) as ingester:
        await publish(mosquitto, first)
        await wait_until(lambda: delivered(ingester, len(first)))
    saved = await query(database_url, "SELECT name, length(state) > 0 FROM detector_state")
    assert saved == [(f"cp-{topic_prefix}", True)]
    open_ = "SELECT count(*) FILTER (WHERE ended_at IS NULL), count(*) FROM episodes"
    assert await query(database_url, open_) == [(1, 1)]
    # a new process: the episode goes on (no second one), then closes on calm values;
    # with its baseline restored, a new surge after the settling time (VALUES.settle
    # values) is an episode at once (no warm-up again)
    settled = calm[130 : 130 + VALUES.close_after + VALUES.settle + 2]
    second = _voltage("gw-c", "sl-c", topic_prefix, [162.0, *settled, 165.0], seq0=132)
    async with _ingester(database_url, mosquitto, topic_prefix) as ingester:
        await publish(mosquitto, second)
        await wait_until(lambda: delivered(ingester, len(second)))
    rows = await query(
        database_url, "SELECT ended_at IS NULL, observed FROM episodes ORDER BY started_at"
    )
    assert [r[0] for r in rows] == [False, True]  # closed, and a new one open
    assert rows[0][1] in (160.0, 161.0, 162.0) and rows[1][1] == 165.0


async def test_a_silent_gateway_is_one_episode_and_its_return_closes_it(
    database_url: str, mosquitto: LocalMosquitto, topic_prefix: str
) -> None:
    t = topic("gw-s", "telemetry", prefix=topic_prefix)
    now_ms = int(time.time() * 1000)

    def message(i: int) -> tuple[str, bytes]:  # a reading a second, as of 10 s ago
        ts = now_ms - 10_000 + i * 1_000
        return t, telemetry(
            "gw-s", i + 1, [reading(d, ts, voltage_v=120.0) for d in ("sl-s1", "sl-s2")]
        )

    ingester = _ingester(database_url, mosquitto, topic_prefix, dropout_check_s=0.1)
    async with ingester:
        await publish(mosquitto, [message(i) for i in range(10)])
        await wait_until(lambda: delivered(ingester, 10))
        sql = "SELECT gateway IS NOT NULL, device, ended_at IS NULL FROM episodes"
        await wait_until(lambda: _rows(database_url, sql, [(True, None, True)]), within_s=10)
        await publish(mosquitto, [message(i) for i in range(10, 20)])
        await wait_until(lambda: _rows(database_url, sql, [(True, None, False)]), within_s=10)
    assert ingester.stats.episodes_opened == {"gateway_silent": 1}


async def test_out_of_range_values_are_dead_letters_and_a_range_episode(
    database_url: str, mosquitto: LocalMosquitto, topic_prefix: str
) -> None:
    values = [55.0] * 5 + [-9999.0] * 3 + [56.0] * 5
    t = topic("gw-r", "telemetry", prefix=topic_prefix)
    messages = [
        (t, telemetry("gw-r", i + 1, [reading("env-r", T0_MS + i * MIN_MS, noise_dba=x)]))
        for i, x in enumerate(values)
    ]
    async with _ingester(database_url, mosquitto, topic_prefix) as ingester:
        await publish(mosquitto, messages)
        await wait_until(lambda: delivered(ingester, len(messages)))
    letters = await query(database_url, "SELECT count(*) FROM dead_letters")
    assert letters == [(3,)]
    rows = await query(
        database_url,
        "SELECT detector, (extract(epoch FROM started_at) * 1000)::bigint,"
        " (extract(epoch FROM ended_at) * 1000)::bigint, observed, severity FROM episodes",
    )
    assert rows == [("range", T0_MS + 5 * MIN_MS, T0_MS + 7 * MIN_MS, -9999.0, "high")]


async def _rows(database_url: str, sql: str, expected: list[tuple[object, ...]]) -> bool:
    return await query(database_url, sql) == expected
