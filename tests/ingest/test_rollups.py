"""The live ingester writes windowed aggregates that match a computation from raw readings."""

from __future__ import annotations

import random

import pytest

from citytel.local import LocalMosquitto
from devices.contract import topic
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

START_MS = T0_MS - T0_MS % 3_600_000  # on the hour, so windows are easy to see

_FROM_RAW = """
SELECT device, metric, 'epoch'::timestamptz + floor(extract(epoch FROM time) / %(w)s) * %(w)s
       * INTERVAL '1 second' AS window_start,
       count(*), sum(value), min(value), max(value),
       (array_agg(value ORDER BY time))[1], (array_agg(value ORDER BY time DESC))[1],
       stddev_pop(value)
FROM metric_values GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
"""
_FROM_ROLLUPS = """
SELECT device, metric, window_start, count, sum, min, max, first, last, sqrt(m2 / count)
FROM rollups WHERE width_s = %(w)s ORDER BY 1, 2, 3
"""


async def test_rollups_match_the_raw_readings_with_late_and_duplicate_messages(
    database_url: str, mosquitto: LocalMosquitto, topic_prefix: str
) -> None:
    rng = random.Random(5)
    t = topic("gw-w", "telemetry", prefix=topic_prefix)
    messages = []
    for seq, step in enumerate(range(3, 90), start=1):  # every 10 s for 15 minutes, 3 devices
        ts = START_MS + step * 10_000
        rs = [
            reading(
                f"env-{d}",
                ts + d,
                temperature_c=round(rng.uniform(-5, 30), 2),
                noise_dba=round(rng.uniform(40, 90), 1),
            )
            for d in range(3)
        ]
        messages.append((t, telemetry("gw-w", seq, rs)))
    rng.shuffle(messages[20:40])  # out of order within the lateness
    messages.insert(50, messages[10])  # a duplicate
    # long after minute 0 closed: a late reading for it, and one for the first hour
    late = telemetry("gw-w", 999, [reading("env-0", START_MS + 1_000, temperature_c=55.0)])
    ingester = make_ingester(
        database_url, mosquitto, topic_prefix, "w", batch_max_wait_s=0.02, allowed_lateness_s=60
    )
    async with ingester:
        for i in range(0, len(messages), 10):  # in batches, so windows close on the way
            await publish(mosquitto, messages[i : i + 10])
            n = min(i + 10, len(messages))
            await wait_until(lambda n=n: delivered(ingester, n))  # type: ignore[misc]
        await publish(mosquitto, [(t, late)])
        await wait_until(lambda: delivered(ingester, len(messages) + 1))
    assert ingester.stats.late_values == 1
    for width in (60, 900, 3600):
        raw = await query(database_url, _FROM_RAW, {"w": width})  # type: ignore[arg-type]
        rolled = await query(database_url, _FROM_ROLLUPS, {"w": width})  # type: ignore[arg-type]
        assert len(rolled) == len(raw) > 0
        for a, b in zip(rolled, raw, strict=True):
            assert a[:4] == b[:4] and a[5:9] == b[5:9]  # keys, count, min, max, first, last
            assert a[4] == pytest.approx(b[4]) and a[9] == pytest.approx(float(b[9]))
    late_rows = await query(
        database_url, "SELECT width_s, late, revision FROM rollups WHERE late > 0 ORDER BY 1"
    )
    assert [(w, late) for w, late, _ in late_rows] == [(60, 1)]
    assert late_rows[0][2] >= 2  # the closed window was re-opened, merged, re-emitted
