"""CITYTEL_TIMEZONE is the API's default time zone: series, exports, open data."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from citytel.settings import Settings
from tests.api.conftest import SPRING, City, api_client
from tests.api.reference import buckets, raw_rows

WEEK = {"from": SPRING.isoformat(), "to": (SPRING + timedelta(days=4)).isoformat()}
ONE = {"device": "env-1", "metric": "no2_ppb", "bucket": "1d", "agg": "sum"}


async def test_day_buckets_default_to_the_configured_zone(city: City, keys: dict[str, str]) -> None:
    rows = await raw_rows(city.url, "env-1", "no2_ppb", SPRING, SPRING + timedelta(days=4))
    for zone, offset in (("Asia/Kolkata", "+05:30"), ("UTC", "Z")):
        async with api_client(city.url, keys["reader"], timezone=zone) as client:
            body = (await client.get("/v1/series", params=ONE | WEEK)).json()
            assert body["tz"] == zone
            points = body["series"][0]["points"]
            assert points[0]["time"].endswith(offset)
            expected = buckets(rows, "1d", "sum", zone)
            got = [datetime.fromisoformat(p["time"]) for p in points]
            assert got == [t for t, _ in expected] and len(got) >= 4
            # a tz in the request still wins
            asked = await client.get("/v1/series", params=ONE | WEEK | {"tz": "Asia/Tokyo"})
            assert asked.json()["series"][0]["points"][0]["time"].endswith("+09:00")
            export = await client.get("/v1/exports/series.csv", params=ONE | WEEK)
            first = next(iter(csv.DictReader(io.StringIO(export.text))))
            assert first["time"] == expected[0][0].astimezone(ZoneInfo(zone)).isoformat()


def test_the_setting_is_read_from_citytel_timezone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYTEL_TIMEZONE", "Europe/Paris")
    assert Settings(_env_file=None).timezone == "Europe/Paris"  # type: ignore[call-arg]


def test_the_service_wires_the_setting_into_the_api() -> None:
    from citytel import supervisor

    settings = Settings(_env_file=None, timezone="Asia/Tokyo", open_data_k=9)  # type: ignore[call-arg]
    server = supervisor.api_server(settings, "postgresql://unused")
    state = server.config.app.state
    assert state.timezone == "Asia/Tokyo"
    assert (state.open_data.timezone, state.open_data.k) == ("Asia/Tokyo", 9)


def test_an_unknown_zone_is_refused_at_start() -> None:
    from api.app import create_app
    from devices.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="unknown time zone 'Mars/Olympus'"):
        create_app(database_url="postgresql://unused", timezone="Mars/Olympus")
