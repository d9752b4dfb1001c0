"""The API over a city the simulators published and the real ingester stored.

The expected answers come from the simulators' own stream (what was sent), not from the
database the API reads.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from citytel.local import LocalMosquitto
from simulators.city import build_city
from simulators.faults import Fault
from simulators.generator import CityGenerator
from simulators.run import Simulation
from tests.api.conftest import api_client, new_key
from tests.helpers import make_ingester, query, wait_until

START = datetime(2025, 11, 18, 0, tzinfo=UTC)  # 18:00 in Chicago: dark all run long
END = START + timedelta(hours=10)
INTERVAL_S = 300.0


async def _get(client: httpx.AsyncClient, path: str, **params: Any) -> Any:
    r = await client.get(path, params=params)
    assert r.status_code == 200, r.text
    return r.json()


async def test_the_api_answers_what_the_simulated_city_sent(
    database_url: str, mosquitto: LocalMosquitto, topic_prefix: str
) -> None:
    city = build_city(seed=11, streetlights=12, environment=4, traffic=4, gateways=2)
    lamp = next(d for g in city for d in g.devices if d.device_id.startswith("sl-"))
    lamp_gw = next(g.gateway_id for g in city if lamp in g.devices)
    out = Fault(
        "lamp_out", lamp_gw, lamp.device_id, (), START + timedelta(hours=3), END
    )  # still out at the end: an open episode
    args: dict[str, Any] = dict(
        start=START, end=END, interval_s=INTERVAL_S, seed=4, fault_rate=0.0, faults=[out]
    )
    sent = list(CityGenerator(city, **args).messages())
    ingester = make_ingester(
        database_url, mosquitto, topic_prefix, "sim-api", batch_max_wait_s=0.05
    )
    async with ingester:
        async with Simulation(
            city, host="127.0.0.1", port=mosquitto.port, prefix=topic_prefix, speed=0, **args
        ) as sim:
            await asyncio.wait_for(sim.wait(), 60)

        async def stored() -> bool:
            rows = await query(database_url, "SELECT count(*) FROM messages")
            return bool(rows[0][0] == len(sent))

        await wait_until(stored, within_s=30)

    key = await new_key(database_url, "reader")
    async with api_client(database_url, key) as client:
        devices = (await _get(client, "/v1/devices", limit=500))["items"]
        assert sorted((d["device_id"], d["kind"], d["gateway"]) for d in devices) == sorted(
            (d.device_id, d.kind.value, g.gateway_id) for g in city for d in g.devices
        )

        per_gateway: dict[str, int] = defaultdict(int)
        for m in sent:
            per_gateway[m.gateway_id] += 1
        gateways = (await _get(client, "/v1/gateways"))["items"]
        assert {g["gateway_id"]: g["messages_total"] for g in gateways} == per_gateway
        assert all(g["lost_messages"] == 0 for g in gateways)

        env = next(d for g in city for d in g.devices if d.device_id.startswith("env-"))
        hourly: dict[datetime, list[float]] = defaultdict(list)
        for m in sent:
            for r in m.readings:
                if r.device_id == env.device_id:
                    t = datetime.fromtimestamp(int(r.ts) / 1000, UTC)  # type: ignore[arg-type]
                    hourly[t.replace(minute=0, second=0, microsecond=0)].append(
                        r.metrics["temperature_c"]
                    )
        body = await _get(
            client,
            "/v1/series",
            device=env.device_id,
            metric="temperature_c",
            **{"from": START.isoformat(), "to": END.isoformat()},
            bucket="1h",
            agg="avg",
        )
        (series,) = body["series"]
        got = {datetime.fromisoformat(p["time"]): p["value"] for p in series["points"]}
        assert got.keys() == hourly.keys()
        for t, values in hourly.items():
            assert abs(got[t] - sum(values) / len(values)) < 1e-9

        latest = (await _get(client, f"/v1/devices/{env.device_id}/latest"))["items"]
        last_tick = END - timedelta(seconds=INTERVAL_S)
        assert {datetime.fromisoformat(i["time"]) for i in latest} == {last_tick}

        open_ = (await _get(client, "/v1/anomalies", state="open", detector="lamp_out"))["items"]
        assert [(a["device_id"], a["gateway"]) for a in open_] == [(lamp.device_id, lamp_gw)]
        started = datetime.fromisoformat(open_[0]["started_at"])
        assert out.start <= started <= out.start + timedelta(minutes=30)
