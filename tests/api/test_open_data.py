"""Open data's privacy rules, against a real PostgreSQL: what leaves and what does not."""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg

from api.app import create_app
from api.deps import Limits
from api.routes.open_data import OpenDataPolicy, whole_buckets
from devices.catalog import BY_NAME, DEFAULT

T0 = datetime(2026, 3, 2, 12, tzinfo=UTC)  # a Monday noon, long past
HOUR = {"from": "2026-03-02T12:00:00Z", "to": "2026-03-02T13:00:00Z"}


@contextlib.asynccontextmanager
async def open_client(url: str, **app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client without any key, of a fresh app on ``url``."""
    application = create_app(database_url=url, **app)
    async with (
        application.router.lifespan_context(application),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application), base_url="http://citytel"
        ) as client,
    ):
        yield client


def _load(
    url: str, devices: list[tuple[str, str, float, float]], values: list[tuple[Any, ...]]
) -> None:
    """Devices (id, kind, lat, lon) and values (device id, metric, time, value)."""
    with psycopg.connect(url, autocommit=True) as conn:
        for device_id, kind, lat, lon in devices:
            conn.execute(
                "INSERT INTO devices (device_id, kind, latitude, longitude, announced)"
                " VALUES (%s, %s, %s, %s, true)",
                (device_id, kind, lat, lon),
            )
        for device_id, metric, t, v in values:
            conn.execute(
                "INSERT INTO metric_values SELECT %s, id, %s, %s FROM devices WHERE device_id = %s",
                (t, BY_NAME[metric].id, v, device_id),
            )


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


async def test_the_catalog_of_datasets_needs_no_key_and_lists_public_metrics_only(
    database_url: str,
) -> None:
    async with open_client(database_url) as client:
        r = await client.get("/open/v1/datasets")
        assert r.status_code == 200 and r.headers["content-type"] == "application/ld+json"
        body = r.json()
        assert body["@type"] == "dcat:Catalog"
        names = [d["dct:identifier"] for d in body["dcat:dataset"]]
        assert names == [m.name for m in DEFAULT.metrics if m.public]
        assert "voltage_v" not in names and "no2_ppb" in names
        one = (await client.get("/open/v1/datasets/pedestrians")).json()
        assert one["dct:license"] == "https://creativecommons.org/licenses/by/4.0/"
        assert one["citytel:statistic"] == "total" and one["citytel:suppressedBelow"] == 5
        assert one["citytel:buckets"] == ["1h"]
        assert [d["dcat:mediaType"] for d in one["dcat:distribution"]] == [
            "text/csv",
            "application/geo+json",
        ]
        hidden = await client.get("/open/v1/series/voltage_v.csv", params=HOUR)
        assert hidden.status_code == 404
        assert (await client.get("/open/v1/datasets/voltage_v")).status_code == 404
        # the internal exports keep their keys
        assert (await client.get("/v1/exports/devices.csv")).status_code == 401


async def test_nothing_finer_than_15_minutes_leaves(database_url: str) -> None:
    async with open_client(database_url) as client:
        for bucket in ("1m", "5m"):
            r = await client.get("/open/v1/series/no2_ppb.csv", params=HOUR | {"bucket": bucket})
            assert r.status_code == 422, bucket


async def test_cells_merge_devices_round_coordinates_and_name_no_device(
    database_url: str,
) -> None:
    # two sensors in one 0.005° cell, one in another; a reading each 5 minutes
    sensors = [
        ("env-a", "environment", 41.88123, -87.63456),
        ("env-b", "environment", 41.8822, -87.6361),
        ("env-c", "environment", 41.90, -87.60),
    ]
    starts = {"env-a": 10.0, "env-b": 20.0, "env-c": 30.0}
    values = [
        (d, "no2_ppb", T0 + timedelta(minutes=5 * i), v + i)
        for d, v in starts.items()
        for i in range(12)
    ]
    _load(database_url, sensors, values)
    async with open_client(database_url) as client:
        r = await client.get("/open/v1/series/no2_ppb.csv", params=HOUR | {"bucket": "15m"})
        assert r.status_code == 200, r.text
        assert "env-" not in r.text
        rows = _csv(r.text)
        assert [(x["time"], x["latitude"], x["longitude"], x["devices"]) for x in rows[:2]] == [
            ("2026-03-02T12:00:00+00:00", "41.88", "-87.635", "2"),
            ("2026-03-02T12:00:00+00:00", "41.9", "-87.6", "1"),
        ]
        # the mean of both devices' values 0..2 of the first quarter hour
        assert float(rows[0]["mean"]) == (10 + 11 + 12 + 20 + 21 + 22) / 6
        assert len(rows) == 8 and {x["withheld"] for x in rows} == {"False"}
        geo = await client.get("/open/v1/series/no2_ppb.geojson", params=HOUR)
        collection = geo.json()
        assert collection["license"] == "https://creativecommons.org/licenses/by/4.0/"
        assert collection["features"][0]["geometry"]["coordinates"] == [-87.635, 41.88]
        assert collection["features"][0]["properties"]["devices"] == 2
        assert "env-" not in geo.text
        assert 'rel="license"' in r.headers["link"] and 'rel="describedby"' in r.headers["link"]
        cells = (await client.get("/open/v1/devices.geojson")).json()["features"]
        assert [f["properties"] for f in cells] == [
            {"kind": "environment", "devices": 2},
            {"kind": "environment", "devices": 1},
        ]
    async with open_client(database_url, limits=Limits(max_points=7)) as client:
        r = await client.get("/open/v1/series/no2_ppb.csv", params=HOUR | {"bucket": "15m"})
        assert r.status_code == 400 and r.json()["max_points"] == 7  # 8 cells x buckets
    async with open_client(database_url, limits=Limits(max_points=8)) as client:
        r = await client.get("/open/v1/series/no2_ppb.csv", params=HOUR | {"bucket": "15m"})
        assert r.status_code == 200 and len(_csv(r.text)) == 8
        cells = (await client.get("/open/v1/devices.geojson")).json()["features"]
        assert [f["properties"] for f in cells] == [
            {"kind": "environment", "devices": 2},
            {"kind": "environment", "devices": 1},
        ]


async def test_only_whole_buckets_that_have_ended_leave(database_url: str) -> None:
    now = datetime.now(UTC)
    current = datetime.fromtimestamp(now.timestamp() // 900 * 900, UTC)
    _load(
        database_url,
        [("tr-a", "traffic", 41.9, -87.6)],
        [("tr-a", "speed_kmh", T0 + timedelta(minutes=m), v) for m, v in ((1, 30.0), (14, 50.0))]
        + [("tr-a", "speed_kmh", current - timedelta(minutes=10), 20.0)]
        # in the next quarter hour, which cannot end while the test runs (a reading in
        # the current one would leave if the test crossed its end)
        + [("tr-a", "speed_kmh", current + timedelta(minutes=15, seconds=1), 99.0)],
    )
    async with open_client(database_url) as client:
        # `from` inside the bucket: the whole bucket, with the reading before `from`
        part = {"from": "2026-03-02T12:10:00Z", "to": "2026-03-02T12:20:00Z", "bucket": "15m"}
        rows = _csv((await client.get("/open/v1/series/speed_kmh.csv", params=part)).text)
        assert [(x["time"], float(x["mean"])) for x in rows] == [
            ("2026-03-02T12:00:00+00:00", 40.0)
        ]
        ahead = {"from": (current - timedelta(hours=1)).isoformat(),
                 "to": (now + timedelta(hours=1)).isoformat(), "bucket": "15m"}  # fmt: skip
        rows = _csv((await client.get("/open/v1/series/speed_kmh.csv", params=ahead)).text)
        # a quarter hour that has not ended does not leave; the one that has does
        assert [float(x["mean"]) for x in rows] == [20.0]


def test_whole_buckets_round_both_ends_down_and_stop_at_now() -> None:
    now = datetime(2026, 3, 2, 12, 20, tzinfo=UTC)
    start, end, n = whole_buckets(T0 + timedelta(minutes=5), now + timedelta(days=1), "15m",
                                  "UTC", now)  # fmt: skip
    assert (start, end, n) == (T0, T0 + timedelta(minutes=15), 1)
    start, end, n = whole_buckets(T0, T0 + timedelta(days=3), "1d", "America/Chicago", now)
    assert (start.isoformat(), end.isoformat(), n) == (
        "2026-03-02T00:00:00-06:00", "2026-03-02T00:00:00-06:00", 0,
    )  # fmt: skip


async def test_people_counts_below_k_are_withheld_and_hourly_only(database_url: str) -> None:
    # one counter in its own cell: 4 people in the first hour, 5 in the second
    _load(
        database_url,
        [("pc-a", "people_counter", 41.9, -87.6), ("pc-b", "people_counter", 41.95, -87.6)],
        [("pc-a", "pedestrians", T0 + timedelta(minutes=15 * i), 1.0) for i in range(4)]
        + [("pc-a", "pedestrians", T0 + timedelta(hours=1, minutes=10 * i), 1.0) for i in range(5)]
        + [("pc-b", "pedestrians", T0, 0.0)],
    )
    two_hours = {"from": "2026-03-02T12:00:00Z", "to": "2026-03-02T14:00:00Z"}
    async with open_client(database_url) as client:
        r = await client.get("/open/v1/series/pedestrians.csv", params=two_hours)
        rows = _csv(r.text)
        assert [(x["time"], x["latitude"], x["total"], x["withheld"]) for x in rows] == [
            ("2026-03-02T12:00:00+00:00", "41.9", "", "True"),
            ("2026-03-02T12:00:00+00:00", "41.95", "", "True"),  # a zero is below k too
            ("2026-03-02T13:00:00+00:00", "41.9", "5.0", "False"),
        ]
        geo = (await client.get("/open/v1/series/pedestrians.geojson", params=two_hours)).json()
        assert [f["properties"]["total"] for f in geo["features"]] == [None, None, 5.0]
        for bucket in ("15m", "1d"):
            finer = await client.get(
                "/open/v1/series/pedestrians.csv", params=two_hours | {"bucket": bucket}
            )
            assert finer.status_code == 422 and "1h buckets only" in finer.json()["detail"]
    async with open_client(database_url, open_data_policy=OpenDataPolicy(k=6)) as client:
        rows = _csv((await client.get("/open/v1/series/pedestrians.csv", params=two_hours)).text)
        assert [x["withheld"] for x in rows] == ["True", "True", "True"]


async def test_counters_publish_increases_and_skip_a_reset(database_url: str) -> None:
    def energy(device: str, *values: tuple[int, float]) -> list[tuple[Any, ...]]:
        return [(device, "energy_wh", T0 + timedelta(minutes=m), v) for m, v in values]

    _load(
        database_url,
        [("sl-a", "streetlight", 41.9, -87.6), ("sl-b", "streetlight", 41.9, -87.6)],
        # a reading every quarter hour from 11:45; sl-b's counter resets at 12:30
        energy("sl-a", (-15, 1000.0), (0, 1010.0), (15, 1020.0), (30, 1035.0), (45, 1060.0))
        + energy("sl-b", (-15, 500.0), (0, 505.0), (15, 510.0), (30, 2.0), (45, 4.0)),
    )
    async with open_client(database_url) as client:
        hour = _csv((await client.get("/open/v1/series/energy_wh.csv", params=HOUR)).text)
        # from each device's 11:45 value, sl-b's reset leaving it out of the hour
        assert [(x["time"], x["devices"], x["increase"]) for x in hour] == [
            ("2026-03-02T12:00:00+00:00", "2", "60.0")
        ]
        quarters = _csv(
            (
                await client.get("/open/v1/series/energy_wh.csv", params=HOUR | {"bucket": "15m"})
            ).text
        )
        assert [(x["time"][11:16], x["increase"]) for x in quarters] == [
            ("12:00", str(10.0 + 5.0)),
            ("12:15", str(10.0 + 5.0)),
            ("12:30", "15.0"),  # sl-b went back: only sl-a
            ("12:45", str(25.0 + 2.0)),
        ]
        first = {"from": "2026-03-02T11:30:00Z", "to": "2026-03-02T12:00:00Z", "bucket": "15m"}
        early = _csv((await client.get("/open/v1/series/energy_wh.csv", params=first)).text)
        assert early == []  # 11:45 has no earlier value, 11:30 no value: no increase known


async def test_local_days_are_in_the_configured_time_zone(database_url: str) -> None:
    _load(
        database_url,
        [("ws-a", "weather_station", 41.9, -87.6)],
        [
            ("ws-a", "wind_speed_ms", datetime(2026, 3, 8, 5, 59, tzinfo=UTC), 4.0),  # Mar 7 local
            ("ws-a", "wind_speed_ms", datetime(2026, 3, 8, 6, 1, tzinfo=UTC), 8.0),  # Mar 8
        ],
    )
    days = {"from": "2026-03-07T00:00:00Z", "to": "2026-03-10T00:00:00Z", "bucket": "1d"}
    async with open_client(database_url, timezone="America/Chicago") as client:
        rows = _csv((await client.get("/open/v1/series/wind_speed_ms.csv", params=days)).text)
        assert [(x["time"], x["mean"]) for x in rows] == [
            ("2026-03-07T00:00:00-06:00", "4.0"),
            ("2026-03-08T00:00:00-06:00", "8.0"),
        ]
    async with open_client(database_url) as client:  # UTC: both in the day of Mar 8
        rows = _csv((await client.get("/open/v1/series/wind_speed_ms.csv", params=days)).text)
        assert [(x["time"], x["mean"]) for x in rows] == [("2026-03-08T00:00:00+00:00", "6.0")]


async def test_a_metric_made_public_by_a_new_catalog_version_is_published(
    database_url: str,
) -> None:
    from storage import catalog
    from storage.database import connect

    _load(database_url, [("sl-a", "streetlight", 41.9, -87.6)], [("sl-a", "voltage_v", T0, 120.0)])
    data = DEFAULT.document.model_dump(mode="json")
    for m in data["metrics"]:
        if m["name"] == "voltage_v":
            m["public"] = True
    conn = await connect(database_url, autocommit=True)
    try:
        await catalog.apply(conn, type(DEFAULT.document).model_validate(data), source="cli")
    finally:
        await conn.close()
    async with open_client(database_url) as client:
        rows = _csv((await client.get("/open/v1/series/voltage_v.csv", params=HOUR)).text)
        assert [x["mean"] for x in rows] == ["120.0"]


async def test_a_cumulative_people_count_publishes_increases_withheld_below_k(
    database_url: str,
) -> None:
    from devices.catalog_model import from_json
    from storage import catalog
    from storage.database import connect

    data = DEFAULT.document.model_dump(mode="json")
    data["kinds"].append(
        {"id": "turnstile", "description": "a gate", "fiware": "Device", "grid_deg": 0.01,
         "counts_people": True}
    )  # fmt: skip
    data["metrics"].append(
        {"id": 50, "name": "entries_total", "kind": "turnstile", "unit": "1", "unit_code": "C62",
         "low": 0, "high": 1e9, "fiware": "Device.value", "description": "people since install",
         "counter": True, "public": True}
    )  # fmt: skip
    conn = await connect(database_url, autocommit=True)
    try:
        await catalog.apply(conn, from_json(data), source="cli")
        await conn.execute(
            "INSERT INTO devices (device_id, kind, latitude, longitude) VALUES"
            " ('gate-1', 'turnstile', 41.9, -87.6)"
        )
        for minutes, total in ((-30, 100.0), (30, 103.0), (90, 110.0)):  # +3, then +7
            await conn.execute(
                "INSERT INTO metric_values SELECT %s, id, 50, %s FROM devices",
                (T0 + timedelta(minutes=minutes), total),
            )
    finally:
        await conn.close()
    two_hours = {"from": "2026-03-02T12:00:00Z", "to": "2026-03-02T14:00:00Z"}
    async with open_client(database_url) as client:
        rows = _csv((await client.get("/open/v1/series/entries_total.csv", params=two_hours)).text)
        assert [(x["time"][11:16], x["increase"], x["withheld"]) for x in rows] == [
            ("12:00", "", "True"),
            ("13:00", "7.0", "False"),
        ]
