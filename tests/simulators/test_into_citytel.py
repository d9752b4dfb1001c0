"""The simulated city, faults and all, through the real ingester into PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from citytel.local import LocalMosquitto
from devices.catalog import BY_NAME
from simulators.city import build_city
from simulators.faults import Fault
from simulators.generator import CityGenerator, Message
from simulators.run import Simulation
from tests.helpers import make_ingester, query, wait_until


@pytest.mark.parametrize("binary", [False, True], ids=["json", "msgpack"])
async def test_every_value_is_stored_once_or_dead_lettered_as_out_of_range(
    database_url: str, mosquitto: LocalMosquitto, topic_prefix: str, binary: bool
) -> None:
    city = build_city(seed=6, streetlights=30, environment=12, traffic=8, gateways=3)
    start = datetime(2025, 11, 18, 12, tzinfo=UTC)
    end = start + timedelta(hours=8)
    env = next(d for g in city for d in g.devices if d.device_id.startswith("env-"))
    gw = next(g.gateway_id for g in city if env in g.devices)
    hour = timedelta(hours=1)
    faults = [
        Fault("out_of_range", gw, env.device_id, ("pm10_ugm3",), start + hour, start + 2 * hour),
        Fault("duplicate", city[1].gateway_id, None, (), start + hour, start + 3 * hour),
        Fault("backlog_replay", city[2].gateway_id, None, (), start + hour, start + 2 * hour),
    ]
    args = dict(start=start, end=end, interval_s=600.0, seed=2, fault_rate=3.0, faults=faults)
    stream = [m for m in CityGenerator(city, **args).messages()]  # type: ignore[arg-type]
    distinct = {(m.gateway_id, m.seq): m for m in stream}
    garbage = sum(
        1
        for m in distinct.values()
        for r in m.readings
        for k, v in r.metrics.items()
        if not BY_NAME[k].low <= v <= BY_NAME[k].high
    )
    assert garbage >= 6
    values = sum(m.values for m in distinct.values())
    ingester = make_ingester(database_url, mosquitto, topic_prefix, "ingest", batch_max_wait_s=0.05)
    async with ingester:
        async with Simulation(
            city,
            host="127.0.0.1",
            port=mosquitto.port,
            prefix=topic_prefix,
            binary=binary,
            speed=0,
            **args,  # type: ignore[arg-type]
        ) as sim:
            await asyncio.wait_for(sim.wait(), 60)
        assert sim.stats.messages == len(stream) > len(distinct)  # duplicates were sent

        async def stored() -> bool:
            rows = await query(database_url, "SELECT count(*) FROM messages")
            return bool(rows[0][0] == len(distinct))

        await wait_until(stored, within_s=30)
    rows = await query(database_url, "SELECT count(*) FROM metric_values")
    assert rows[0][0] == values - garbage
    rows = await query(database_url, "SELECT reason, count(*) FROM dead_letters GROUP BY 1")
    assert dict(rows) == {"out_of_range": garbage}  # type: ignore[arg-type]
    rows = await query(
        database_url, "SELECT count(*) FROM devices WHERE announced AND kind IS NOT NULL"
    )
    assert rows[0][0] == sum(len(g.devices) for g in city)
    assert isinstance(stream[0], Message)


@pytest.mark.parametrize("protocol", ["chirpstack", "tts", "sparkplug", "senml"])
async def test_the_city_in_another_vendors_protocol_is_stored_value_for_value(
    database_url: str, mosquitto: LocalMosquitto, topic_prefix: str, protocol: str
) -> None:
    city = build_city(seed=7, streetlights=6, environment=3, traffic=3, gateways=2)
    start = datetime(2025, 11, 18, 12, tzinfo=UTC)
    args = dict(start=start, end=start + timedelta(hours=2), interval_s=600.0, seed=3)
    stream = list(CityGenerator(city, **args).messages())  # type: ignore[arg-type]
    values = sum(m.values for m in stream)
    options = {"batch_max_wait_s": 0.05, "formats": (protocol,)}
    async with make_ingester(database_url, mosquitto, topic_prefix, "vendor", **options) as ing:
        async with Simulation(
            city,
            host="127.0.0.1",
            port=mosquitto.port,
            prefix=topic_prefix,
            speed=0,
            protocol=protocol,
            **args,  # type: ignore[arg-type]
        ) as sim:
            await asyncio.wait_for(sim.wait(), 60)

        async def stored() -> bool:
            rows = await query(database_url, "SELECT count(*) FROM metric_values")
            return bool(rows[0][0] >= values)

        await wait_until(stored, within_s=30)
        assert ing.stats.duplicates == 0
    rows = await query(
        database_url, "SELECT count(*), count(DISTINCT (device, metric, time)) FROM metric_values"
    )
    assert rows == [(values, values)]  # every value the simulator sent, each once
    letters = await query(database_url, "SELECT reason, count(*) FROM dead_letters GROUP BY 1")
    assert letters == []
