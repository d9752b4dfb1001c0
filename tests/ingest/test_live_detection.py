"""The live service: a running simulator with injected faults, through the broker and the
ingester, leaves rollups and the faults' episodes in PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from citytel.local import LocalMosquitto
from simulators.city import build_city
from simulators.faults import Fault
from simulators.run import Simulation
from tests.helpers import delivered, make_ingester, query, wait_until


async def test_a_simulated_night_with_faults_becomes_rollups_and_episodes(
    database_url: str, mosquitto: LocalMosquitto, topic_prefix: str
) -> None:
    city = build_city(seed=4, streetlights=4, environment=2, traffic=2, gateways=1)
    gw = city[0].gateway_id
    lamp, env, road = (
        next(d.device_id for d in city[0].devices if d.device_id.startswith(p))
        for p in ("sl-", "env-", "tr-")
    )
    start = datetime(2025, 11, 18, 6, tzinfo=UTC)  # midnight in the city
    hour = timedelta(hours=1)
    faults = [
        Fault("lamp_out", gw, lamp, ("power_w",), start + hour, start + 2 * hour),
        Fault("dead_detector", gw, road, (), start + hour, start + 2 * hour),
        Fault("out_of_range", gw, env, ("noise_dba",), start + 90 * timedelta(minutes=1),
              start + 93 * timedelta(minutes=1)),
    ]  # fmt: skip
    ingester = make_ingester(database_url, mosquitto, topic_prefix, "live", batch_max_wait_s=0.05)
    async with ingester:
        async with Simulation(
            city, host="127.0.0.1", port=mosquitto.port, prefix=topic_prefix, speed=0,
            start=start, end=start + 3 * hour, interval_s=60, seed=4, faults=faults,
        ) as sim:  # fmt: skip
            await asyncio.wait_for(sim.wait(), 60)
        messages = sim.stats.messages
        await wait_until(lambda: delivered(ingester, messages), within_s=30)
    stored = await query(database_url, "SELECT count(*) FROM metric_values")
    rolled = await query(database_url, "SELECT sum(count) FROM rollups WHERE width_s = 60")
    assert stored[0][0] > 8_000 and rolled == stored  # every stored value in one window
    rows = await query(
        database_url,
        "SELECT e.detector, d.device_id, (extract(epoch FROM e.started_at))::bigint"
        " FROM episodes e JOIN devices d ON d.id = e.device ORDER BY 1, 2",
    )
    found = {(detector, device) for detector, device, _ in rows}
    assert {("lamp_out", lamp), ("dead_detector", road), ("range", env)} <= found, rows
    window = (start + hour).timestamp(), (start + 2 * hour).timestamp()
    for detector, device, started in rows:  # nothing else, and each within its fault
        assert (detector, device) in {("lamp_out", lamp), ("dead_detector", road),
                                      ("range", env), ("flatline", road)}, rows  # fmt: skip
        assert window[0] <= started <= window[1], rows
