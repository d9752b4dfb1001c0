"""/metrics, open-data exports, and the database failing: 503 and 504 problems."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import timedelta

import httpx
import pytest

from api.deps import Limits
from citytel.local import LocalMosquitto
from devices.contract import topic
from storage.database import connect
from tests.api.conftest import SPRING, City, api_client, new_key
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


def _samples(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


async def test_metrics_are_read_from_the_database(reader: httpx.AsyncClient, city: City) -> None:
    r = await reader.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    s = _samples(r.text)
    assert "# TYPE citytel_dead_letters_total counter" in r.text
    assert s['citytel_dead_letters_total{reason="malformed"}'] == 1
    (messages,) = (await query(city.url, "SELECT count(*) FROM messages"))[0]
    assert s["citytel_ingest_messages_total"] == messages
    for detector, n in await query(city.url, "SELECT detector, count(*) FROM episodes GROUP BY 1"):
        assert s[f'citytel_episodes_opened_total{{detector="{detector}"}}'] == n
    assert s['citytel_episodes_open{detector="lamp_out"}'] == 1
    assert s['citytel_gateways{status="offline"}'] == 1
    assert s['citytel_gateways{status="online"}'] == 1


async def test_metrics_of_the_last_minute(
    database_url: str, mosquitto: LocalMosquitto, topic_prefix: str
) -> None:
    """The city above may have been loaded more than a minute ago: a fresh ingest here."""
    t = topic("gw-m", "telemetry", prefix=topic_prefix)
    messages = [
        (t, telemetry("gw-m", seq, [reading("sl-m", T0_MS + seq, power_w=1.0, dim_pct=5.0)]))
        for seq in range(1, 4)
    ]
    async with make_ingester(database_url, mosquitto, topic_prefix, "metrics") as ingester:
        await publish(mosquitto, messages)

        await wait_until(lambda: delivered(ingester, 3))
    async with api_client(database_url, await new_key(database_url, "reader")) as client:
        s = _samples((await client.get("/metrics")).text)
    assert s["citytel_ingest_messages_total"] == 3
    assert s["citytel_ingest_values_per_second"] == 6 / 60
    assert 1 <= s['citytel_ingest_batch_messages{stat="max"}'] <= 3
    assert s["citytel_ingest_batches"] >= 1


async def test_device_exports_in_csv_and_geojson(reader: httpx.AsyncClient, city: City) -> None:
    r = await reader.get("/v1/exports/devices.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    db = await query(city.url, "SELECT device_id FROM devices ORDER BY 1")
    assert [row["device_id"] for row in rows] == [d[0] for d in db]
    sl1 = next(row for row in rows if row["device_id"] == "sl-1")
    assert (sl1["kind"], float(sl1["latitude"]), float(sl1["longitude"])) == (
        "streetlight",
        41.90,
        -87.65,
    )
    r = await reader.get("/v1/exports/devices.geojson", params={"kind": "streetlight"})
    assert r.headers["content-type"] == "application/geo+json"
    collection = json.loads(r.text)
    assert collection["type"] == "FeatureCollection"
    assert [
        (f["properties"]["device_id"], f["geometry"]["coordinates"]) for f in collection["features"]
    ] == [("sl-1", [-87.65, 41.90]), ("sl-2", [-87.60, 41.80])]
    empty = json.loads((await reader.get("/v1/exports/devices.geojson", params={"q": "zz"})).text)
    assert empty == {"type": "FeatureCollection", "features": []}


async def test_series_exports_carry_the_same_aggregates_as_the_api(
    reader: httpx.AsyncClient,
) -> None:
    params = {
        "device": ["env-1", "tr-1"],
        "metric": ["no2_ppb", "speed_kmh"],
        "bucket": "1h",
        "agg": "max",
        "from": SPRING.isoformat(),
        "to": (SPRING + timedelta(days=3)).isoformat(),
    }
    api = (await reader.get("/v1/series", params=params)).json()["series"]
    expected = [
        (s["device_id"], s["metric"], p["time"], p["value"]) for s in api for p in s["points"]
    ]
    r = await reader.get("/v1/exports/series.csv", params=params)
    assert r.status_code == 200
    assert 'filename="series.csv"' in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert list(rows[0]) == ["device_id", "metric", "unit", "time", "max"]
    got = [(row["device_id"], row["metric"], row["time"], float(row["max"])) for row in rows]
    assert sorted(got) == sorted(expected) and len(got) == 2 * 72
    r = await reader.get("/v1/exports/series.geojson", params=params)
    features = json.loads(r.text)["features"]
    assert len(features) == len(expected)
    assert features[0]["geometry"]["coordinates"] in ([-87.55, 41.70], [-87.70, 41.60])
    assert {f["properties"]["agg"] for f in features} == {"max"}


async def test_exports_are_aggregates_only_and_check_their_parameters(
    reader: httpx.AsyncClient,
) -> None:
    base = {
        "device": "env-1",
        "metric": "no2_ppb",
        "from": "2026-03-07T00:00:00Z",
        "to": "2026-03-08T00:00:00Z",
    }
    for params in (
        base,
        base | {"bucket": "1h", "tz": "Nowhere/Land"},
        base | {"bucket": "1h", "to": "2026-03-01T00:00:00Z"},
    ):
        r = await reader.get("/v1/exports/series.csv", params=params)
        assert r.status_code == 422, params
        assert r.headers["content-type"] == "application/problem+json"


async def test_an_unreachable_database_is_503(keys: dict[str, str]) -> None:
    url = "postgresql://citytel@127.0.0.1:1/nowhere?connect_timeout=1"
    async with api_client(url, keys["reader"], limits=Limits(pool_timeout_s=0.5)) as client:
        r = await client.get("/v1/devices")
        assert r.status_code == 503
        assert r.json()["type"] == "/problems/unavailable"
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and ready.json() == {"status": "database unavailable"}
        assert (await client.get("/healthz")).status_code == 200


async def test_a_query_past_the_statement_timeout_is_504(city: City, keys: dict[str, str]) -> None:
    blocker = await connect(city.url)
    try:
        await blocker.execute("LOCK TABLE metric_values IN ACCESS EXCLUSIVE MODE")
        limits = Limits(statement_timeout_ms=200)
        async with api_client(city.url, keys["reader"], limits=limits) as client:
            r = await client.get(
                "/v1/series",
                params={
                    "device": "env-1",
                    "metric": "no2_ppb",
                    "from": "2026-03-07T00:00:00Z",
                    "to": "2026-03-07T01:00:00Z",
                },
            )
            assert r.status_code == 504
            assert r.json()["type"] == "/problems/timeout"
            csv_export = await client.get(
                "/v1/exports/series.csv",
                params={
                    "device": "env-1",
                    "metric": "no2_ppb",
                    "from": "2026-03-07T00:00:00Z",
                    "to": "2026-03-07T01:00:00Z",
                    "bucket": "1h",
                },
            )
            assert csv_export.status_code == 504
    finally:
        await blocker.rollback()
        await blocker.close()


@pytest.mark.parametrize("path", ["/v1/nothing", "/v1/devices/sl-1/nothing"])
async def test_unknown_routes_are_404_problems(reader: httpx.AsyncClient, path: str) -> None:
    r = await reader.get(path)
    assert r.status_code == 404 and r.json()["type"] == "/problems/not-found"
    r = await reader.post("/v1/devices")
    assert r.status_code == 405 and r.json()["type"] == "/problems/method-not-allowed"


async def test_the_readyz_checks_the_broker_when_configured(city: City) -> None:
    from api.app import create_app

    app = create_app(database_url=city.url, broker=("127.0.0.1", 1))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://citytel"
        ) as client,
    ):
        r = await client.get("/readyz")
        assert r.status_code == 503 and r.json() == {"status": "broker unavailable"}
    await asyncio.sleep(0)


async def test_a_nul_in_a_parameter_is_422_not_a_server_error(reader: httpx.AsyncClient) -> None:
    for path in ("/v1/devices", "/v1/exports/devices.csv"):
        r = await reader.get(path, params={"gateway": "gw\x00n"})
        assert r.status_code == 422, path
        assert r.json()["type"] == "/problems/validation"


async def test_405_lists_every_method_of_the_path(admin: httpx.AsyncClient) -> None:
    r = await admin.request("PUT", "/v1/apikeys")
    assert r.status_code == 405 and r.headers["allow"] == "GET, POST"
