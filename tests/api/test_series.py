"""Series: raw and bucketed answers checked against plain Python over the raw rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, get_args
from zoneinfo import ZoneInfo

import httpx
import pytest

from api.deps import Limits
from api.models import Agg, Bucket
from storage import queries
from storage.database import connect
from tests.api.conftest import FALL, SPRING, City, api_client, new_key
from tests.api.reference import buckets, raw_rows

CHICAGO_WEEK = (SPRING, SPRING + timedelta(days=4))


async def _series(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    params = {k.replace("start", "from").replace("end", "to"): v for k, v in params.items()}
    for k in ("from", "to"):
        if isinstance(params.get(k), datetime):
            params[k] = params[k].isoformat()
    r = await client.get("/v1/series", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def _points(series: dict[str, Any]) -> list[tuple[datetime, float]]:
    return [(datetime.fromisoformat(p["time"]), p["value"]) for p in series["points"]]


async def test_raw_values_are_the_rows_stored(reader: httpx.AsyncClient, city: City) -> None:
    start, end = SPRING, SPRING + timedelta(hours=6)
    body = await _series(reader, device="env-1", metric="no2_ppb", start=start, end=end)
    (s,) = body["series"]
    assert s["source"] == "raw" and body["bucket"] is None
    assert _points(s) == await raw_rows(city.url, "env-1", "no2_ppb", start, end)
    assert len(s["points"]) == 24


@pytest.mark.parametrize("agg", ["avg", "min", "max", "sum", "count", "first", "last", "p95"])
@pytest.mark.parametrize("bucket", ["1m", "5m", "15m", "1h", "1d"])
async def test_every_bucket_and_agg_matches_plain_python(
    reader: httpx.AsyncClient, city: City, bucket: str, agg: str
) -> None:
    start, end = CHICAGO_WEEK if bucket in ("1h", "1d") else (SPRING, SPRING + timedelta(hours=5))
    body = await _series(
        reader, device="env-1", metric="no2_ppb", start=start, end=end, bucket=bucket, agg=agg
    )
    (s,) = body["series"]
    expected = buckets(await raw_rows(city.url, "env-1", "no2_ppb", start, end), bucket, agg)
    got = _points(s)
    assert [t for t, _ in got] == [t for t, _ in expected]
    assert [v for _, v in got] == pytest.approx([v for _, v in expected])
    assert s["source"] == ("raw" if agg == "p95" else "rollups")


async def test_day_buckets_are_local_days_across_daylight_saving(
    reader: httpx.AsyncClient,
) -> None:
    for start, short_or_long, values in ((FALL, "2025-11-02", 100), (SPRING, "2026-03-08", 92)):
        local = start.astimezone(ZoneInfo("America/Chicago"))
        end = datetime(local.year, local.month, local.day + 4, tzinfo=local.tzinfo)
        body = await _series(
            reader,
            device="env-1",
            metric="no2_ppb",
            start=start,
            end=end,
            bucket="1d",
            agg="count",
        )
        points = body["series"][0]["points"]
        assert len(points) == 4  # four local days, whatever their length
        days = {p["time"][:10]: p for p in points}
        assert days[short_or_long]["value"] == values  # 25 or 23 hours of 15-minute values
        assert all(p["time"][11:19] == "00:00:00" for p in points)  # local midnights
    fall = (
        await _series(
            reader,
            device="env-1",
            metric="no2_ppb",
            start=FALL,
            end=FALL + timedelta(days=4),
            bucket="1d",
        )
    )["series"][0]["points"]
    assert [p["time"] for p in fall[:3]] == [
        "2025-11-01T00:00:00-05:00",
        "2025-11-02T00:00:00-05:00",
        "2025-11-03T00:00:00-06:00",
    ]


async def test_another_time_zone_moves_day_buckets(reader: httpx.AsyncClient, city: City) -> None:
    start, end = CHICAGO_WEEK
    body = await _series(
        reader,
        device="env-1",
        metric="no2_ppb",
        start=start,
        end=end,
        bucket="1d",
        agg="sum",
        tz="Asia/Kolkata",
    )
    expected = buckets(
        await raw_rows(city.url, "env-1", "no2_ppb", start, end), "1d", "sum", "Asia/Kolkata"
    )
    assert _points(body["series"][0]) == [(t, pytest.approx(v)) for t, v in expected]
    assert body["series"][0]["source"] == "rollups"  # +05:30 is whole 15-minute windows
    assert body["series"][0]["points"][0]["time"].endswith("+05:30")


async def test_a_range_off_window_edges_uses_raw_values_at_the_edges(
    reader: httpx.AsyncClient, city: City
) -> None:
    start, end = SPRING + timedelta(minutes=7), SPRING + timedelta(hours=30, minutes=50)
    body = await _series(
        reader, device="env-1", metric="no2_ppb", start=start, end=end, bucket="1h", agg="avg"
    )
    s = body["series"][0]
    assert s["source"] == "rollups+raw"
    expected = buckets(await raw_rows(city.url, "env-1", "no2_ppb", start, end), "1h", "avg")
    assert _points(s) == [(t, pytest.approx(v)) for t, v in expected]


async def test_past_the_newest_rollup_the_answer_comes_from_raw_values(
    city: City, keys: dict[str, str]
) -> None:
    """As when the ingester has not yet closed the latest windows: the spare copy of the
    city loses its rollups after a point; the answers must not change."""
    cut = SPRING + timedelta(days=2, hours=5)
    conn = await connect(city.spare_url, autocommit=True)
    try:
        await conn.execute("DELETE FROM rollups WHERE window_start >= %s", (cut,))
    finally:
        await conn.close()
    start, end = CHICAGO_WEEK
    expected = buckets(await raw_rows(city.spare_url, "env-1", "no2_ppb", start, end), "1h", "max")
    async with api_client(city.spare_url, None) as anon:
        assert (await anon.get("/v1/devices")).status_code == 401  # its own keys: none
    async with api_client(city.spare_url, await new_key(city.spare_url, "reader")) as client:
        body = await _series(
            client, device="env-1", metric="no2_ppb", start=start, end=end, bucket="1h", agg="max"
        )
        day = await _series(
            client, device="env-1", metric="no2_ppb", start=start, end=end, bucket="1d", agg="count"
        )
    assert body["series"][0]["source"] == "rollups+raw"
    assert _points(body["series"][0]) == [(t, pytest.approx(v)) for t, v in expected]
    # every value counted once, the 23-hour day included (the last 4 spill past day 4)
    assert [p["value"] for p in day["series"][0]["points"]] == [96, 92, 96, 96, 4]
    assert day["series"][0]["source"] == "rollups+raw"


async def test_several_series_at_once_in_the_order_asked(reader: httpx.AsyncClient) -> None:
    body = await _series(
        reader,
        device=["tr-1", "env-1", "nope"],
        metric=["speed_kmh", "no2_ppb"],
        start=SPRING,
        end=SPRING + timedelta(hours=2),
        bucket="15m",
    )
    assert [(s["device_id"], s["metric"]) for s in body["series"]] == [
        ("tr-1", "speed_kmh"),
        ("tr-1", "no2_ppb"),
        ("env-1", "speed_kmh"),
        ("env-1", "no2_ppb"),
    ]
    sizes = [len(s["points"]) for s in body["series"]]
    assert sizes == [8, 0, 0, 8]  # a series with no values is there, empty


async def test_times_come_back_with_the_offset_of_tz(reader: httpx.AsyncClient) -> None:
    body = await _series(
        reader,
        device="env-1",
        metric="no2_ppb",
        start="2026-03-07T06:00:00Z",
        end="2026-03-07T07:00:00+00:00",
        tz="UTC",
    )
    assert body["start"] == "2026-03-07T06:00:00Z"
    body = await _series(
        reader,
        device="env-1",
        metric="no2_ppb",
        start="2026-03-07T06:00:00Z",
        end="2026-03-07T07:00:00+00:00",
    )
    assert body["series"][0]["points"][0]["time"] == "2026-03-07T00:00:00-06:00"


async def test_too_many_points_is_400_saying_how_to_narrow(
    city: City, keys: dict[str, str]
) -> None:
    async with api_client(city.url, keys["reader"], limits=Limits(max_points=50)) as client:
        params = {
            "device": "env-1",
            "metric": "no2_ppb",
            "from": SPRING.isoformat(),
            "to": (SPRING + timedelta(days=1)).isoformat(),
        }
        raw = await client.get("/v1/series", params=params)  # 96 values
        assert raw.status_code == 400 and raw.json()["type"] == "/problems/too-many-points"
        assert "bucket" in raw.json()["detail"]
        fine = await client.get("/v1/series", params=params | {"bucket": "1m"})  # 1441 buckets
        assert fine.status_code == 400 and fine.json()["points"] == 1441
        assert "wider bucket" in fine.json()["detail"]
        assert (await client.get("/v1/series", params=params | {"bucket": "1h"})).status_code == 200


@pytest.mark.parametrize(
    "params",
    [
        {"from": "2026-03-07T00:00:00", "to": "2026-03-08T00:00:00Z"},  # no offset
        {"from": "2026-03-08T00:00:00Z", "to": "2026-03-07T00:00:00Z"},  # backwards
        {"from": "2026-03-07T00:00:00Z", "to": "2026-03-08T00:00:00Z", "tz": "Mars/Olympus"},
        {"from": "2026-03-07T00:00:00Z", "to": "2026-03-08T00:00:00Z", "agg": "median"},
        {"from": "2026-03-07T00:00:00Z", "to": "2026-03-08T00:00:00Z", "bucket": "7m"},
        {"from": "yesterday", "to": "2026-03-08T00:00:00Z"},
        {"from": "1772841600", "to": "2026-03-08T00:00:00Z"},  # a Unix time is not RFC 3339
        {"from": "0001-01-01T00:00:00Z", "to": "2026-03-08T00:00:00Z"},  # out of range
    ],
)
async def test_invalid_requests_are_422_problems(
    reader: httpx.AsyncClient, params: dict[str, str]
) -> None:
    r = await reader.get("/v1/series", params={"device": "env-1", "metric": "no2_ppb"} | params)
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == "/problems/validation"


async def test_a_day_bucket_in_a_quarter_hour_zone_comes_from_15_minute_rollups(
    reader: httpx.AsyncClient, city: City
) -> None:
    start, end = datetime(2026, 3, 7, tzinfo=UTC), datetime(2026, 3, 9, tzinfo=UTC)
    body = await _series(
        reader,
        device="env-1",
        metric="no2_ppb",
        start=start,
        end=end,
        bucket="1d",
        agg="avg",
        tz="Asia/Kathmandu",
    )  # +05:45
    expected = buckets(
        await raw_rows(city.url, "env-1", "no2_ppb", start, end), "1d", "avg", "Asia/Kathmandu"
    )
    assert body["series"][0]["source"] == "rollups"  # +05:45 is whole 15-minute windows
    assert _points(body["series"][0]) == [(t, pytest.approx(v)) for t, v in expected]


def test_the_api_offers_exactly_the_buckets_and_aggregates_storage_computes() -> None:
    assert set(get_args(Bucket)) == set(queries.BUCKETS)
    assert set(get_args(Agg)) == set(queries.AGGS)


async def test_a_day_bucket_in_a_zone_off_the_quarter_hour_comes_from_raw_values(
    reader: httpx.AsyncClient,
) -> None:
    # Monrovia was 0:44:30 behind UTC until 1972: no rollup window fits its days
    start, end = datetime(1971, 1, 1, tzinfo=UTC), datetime(1971, 1, 3, tzinfo=UTC)
    body = await _series(
        reader,
        device="env-1",
        metric="no2_ppb",
        start=start,
        end=end,
        bucket="1d",
        agg="avg",
        tz="Africa/Monrovia",
    )
    assert body["series"][0]["source"] == "raw"
