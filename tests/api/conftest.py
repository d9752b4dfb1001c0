"""A small city loaded once per session through the real broker and the real ingester.

Two gateways, five devices (one never announced), values every 15 minutes over the
daylight-saving changes of America/Chicago (2025-11-02, a 25-hour day, and 2026-03-08, a
23-hour day), a mains surge (a closed deviation episode), a lamp that goes out at night
(an open lamp_out episode), two seqs never sent (lost messages), one malformed message
(a dead letter), and gateway statuses. Tests read it through the API and check the
answers against the raw rows in the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import msgspec
import pytest

from api.app import create_app
from api.deps import Limits
from citytel.local import LocalMosquitto
from devices.contract import topic
from storage.database import connect
from storage.queries import create_key
from tests.fix_servers import DatabaseServer
from tests.helpers import delivered, make_ingester, publish, query, reading, telemetry, wait_until

FALL = datetime(2025, 11, 1, 5, tzinfo=UTC)  # 2025-11-01 00:00 in Chicago (CDT)
SPRING = datetime(2026, 3, 7, 6, tzinfo=UTC)  # 2026-03-07 00:00 in Chicago (CST)
DAYS = 4
SURGE_AT = datetime(2026, 3, 9, 12, tzinfo=UTC)
NIGHT = datetime(2026, 3, 10, 3, tzinfo=UTC)
LOST_SEQS = (50, 51)  # gw-s never sends these
CITY_TZ = "America/Chicago"
"""The city's CITYTEL_TIMEZONE: the API's default ``tz``."""

DEVICES = [
    {"device_id": "sl-1", "kind": "streetlight", "latitude": 41.90, "longitude": -87.65},
    {"device_id": "sl-2", "kind": "streetlight", "latitude": 41.80, "longitude": -87.60},
]
SOUTH = [
    {"device_id": "env-1", "kind": "environment", "latitude": 41.70, "longitude": -87.55},
    {"device_id": "tr-1", "kind": "traffic", "latitude": 41.60, "longitude": -87.70},
]


@dataclass(frozen=True, slots=True)
class City:
    url: str
    """The loaded database; tests must not change it."""
    spare_url: str
    """A copy made right after loading, for the one test that changes data."""
    fuzz_url: str
    """Another copy, for the schemathesis run (which creates keys)."""
    prefix: str


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def _readings() -> dict[str, dict[datetime, list[dict[str, Any]]]]:
    """Readings by gateway and time."""
    out: dict[str, dict[datetime, list[dict[str, Any]]]] = {"gw-n": {}, "gw-s": {}}

    def add(gw: str, t: datetime, device: str, **metrics: float) -> None:
        out[gw].setdefault(t, []).append(reading(device, _ms(t), **metrics))

    for start in (FALL, SPRING):
        for i in range(DAYS * 96):
            t = start + timedelta(minutes=15 * i)
            add("gw-s", t, "env-1", no2_ppb=float(10 + i % 37), pm2_5_ugm3=float(i % 11))
            add("gw-s", t, "tr-1", speed_kmh=float(40 + i % 13), occupancy_pct=float(i % 7))
            add("gw-n", t, "sl-2", power_w=float(50 + i % 5), dim_pct=80.0)
            add("gw-n", t, "sl-x", power_w=float(i % 3))  # never announced
    for i in range(160):  # minute mains voltage, past the detectors' warm-up; a surge at 140
        add(
            "gw-n",
            SURGE_AT + timedelta(minutes=i, seconds=30),
            "sl-2",
            voltage_v=160.0 if i in (140, 141) else 120.0 + (i * 7919 % 13) / 10,
        )
    for i in range(60):  # ten-minute readings through a night; the lamp fails at 30
        add(
            "gw-n",
            NIGHT + timedelta(minutes=10 * i),
            "sl-1",
            power_w=60.0 if i < 30 else 0.4,
            dim_pct=50.0,
            lamp_on=float(i < 30),
            ambient_lux=3.0,
        )
    return out


def _messages(prefix: str) -> list[tuple[str, bytes]]:
    per_gateway = _readings()
    timeline = sorted((t, gw) for gw, by_time in per_gateway.items() for t in by_time)
    seqs = {"gw-n": 0, "gw-s": 0}
    out = [
        (topic("gw-n", "status", prefix=prefix), b"online"),
        (topic("gw-s", "status", prefix=prefix), b"online"),
        (
            topic("gw-n", "devices", prefix=prefix),
            msgspec.json.encode({"gateway_id": "gw-n", "devices": DEVICES}),
        ),
        (
            topic("gw-s", "devices", prefix=prefix),
            msgspec.json.encode({"gateway_id": "gw-s", "devices": SOUTH}),
        ),
    ]
    for t, gw in timeline:
        seqs[gw] += 1
        if gw == "gw-s" and seqs[gw] in LOST_SEQS:
            seqs[gw] += len(LOST_SEQS)
        payload = telemetry(gw, seqs[gw], per_gateway[gw][t])
        out.append((topic(gw, "telemetry", prefix=prefix), payload))
    out.append((topic("gw-s", "telemetry", prefix=prefix), b'{"gateway_id": "gw-s", "seq"'))
    out.append((topic("gw-s", "status", prefix=prefix), b"offline"))
    return out


async def _load(url: str, broker: LocalMosquitto, prefix: str) -> None:
    messages = _messages(prefix)
    ingester = make_ingester(url, broker, prefix, "api-city", batch_max_wait_s=0.02)
    async with ingester:
        for i in range(0, len(messages), 200):
            await publish(broker, messages[i : i + 200])
            n = min(i + 200, len(messages))
            await wait_until(lambda n=n: delivered(ingester, n), within_s=60)  # type: ignore[misc]

        async def dead_lettered() -> bool:
            return bool(await query(url, "SELECT 1 FROM dead_letters"))

        await wait_until(dead_lettered)


@pytest.fixture(scope="session")
def city(pg_server: DatabaseServer, mosquitto: LocalMosquitto) -> Iterator[City]:
    name = f"citytel_city_{uuid.uuid4().hex[:6]}"
    base = f"{name}_base"
    prefix = f"city-{uuid.uuid4().hex[:6]}/"
    asyncio.run(_load(pg_server.create(base, template=pg_server.template), mosquitto, prefix))
    # sealed like the main template: TimescaleDB's scheduler cannot attach to it, so the
    # copies below never meet 'source database is being accessed by other users'
    pg_server.seal(base)
    copies = [name, f"{name}_spare", f"{name}_fuzz"]
    url, spare, fuzz = (pg_server.create(c, template=base) for c in copies)
    yield City(url, spare, fuzz, prefix)
    for db in [*copies, base]:  # an external server keeps nothing of ours
        pg_server.drop(db)


async def new_key(url: str, role: str) -> str:
    conn = await connect(url, autocommit=True)
    try:
        return (await create_key(conn, role=role, name=f"test {role}")).key
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def keys(city: City) -> dict[str, str]:
    return {role: asyncio.run(new_key(city.url, role)) for role in ("reader", "admin")}


@contextlib.asynccontextmanager
async def api_client(
    url: str, key: str | None, *, limits: Limits | None = None, timezone: str = CITY_TZ
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of a fresh app on ``url`` (its lifespan run), sending ``key``."""
    app = create_app(database_url=url, limits=limits, timezone=timezone)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://citytel", headers=headers
        ) as client,
    ):
        yield client


@pytest.fixture
async def reader(city: City, keys: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(city.url, keys["reader"]) as client:
        yield client


@pytest.fixture
async def admin(city: City, keys: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(city.url, keys["admin"]) as client:
        yield client


@pytest.fixture
async def anonymous(city: City) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(city.url, None) as client:
        yield client
