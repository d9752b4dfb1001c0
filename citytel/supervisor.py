"""``citytel up``: local servers (unless configured), migrations, ingester, API, simulator."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from api.app import create_app
from api.routes.open_data import OpenDataPolicy
from citytel.local import LocalMosquitto, LocalPostgres
from citytel.settings import Settings, broker_from_url
from ingest.ingester import Ingester
from simulators.city import build_city
from simulators.run import Simulation
from storage.database import connect
from storage.migrate import upgrade

log = logging.getLogger("citytel")


@dataclass(frozen=True, slots=True)
class Endpoints:
    database_url: str
    mqtt_url: str


@contextlib.contextmanager
def local_servers(settings: Settings) -> Iterator[Endpoints]:
    """The configured servers, or local ones started under ``var_dir`` for the duration."""
    with contextlib.ExitStack() as stack:
        database_url = settings.database_url
        if database_url is None:
            pg = LocalPostgres(settings.var_dir / "postgres", port=settings.local_pg_port or None)
            database_url = stack.enter_context(pg).url
        mqtt_url = settings.mqtt_url
        if mqtt_url is None:
            broker = LocalMosquitto(
                settings.var_dir / "mosquitto", port=settings.local_mqtt_port or None
            )
            mqtt_url = stack.enter_context(broker).url
        yield Endpoints(database_url, mqtt_url)


async def migrate(settings: Settings, database_url: str) -> None:
    conn = await connect(database_url, autocommit=True)
    try:
        report = await upgrade(conn, timescaledb=settings.timescaledb)
    finally:
        await conn.close()
    log.info("database ready in %s mode", report.mode)


def ingester(settings: Settings, database_url: str, mqtt_url: str) -> Ingester:
    return Ingester(
        database_url=database_url,
        broker=broker_from_url(mqtt_url, ca_file=settings.mqtt_ca_file),
        config=settings.ingester_config(),
    )


class _ApiServer(uvicorn.Server):
    """uvicorn without its own signal handlers: Ctrl-C belongs to the supervisor,
    which stops the parts in order (simulator, API, ingester, then the servers)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def api_server(
    settings: Settings, database_url: str, mqtt_url: str | None = None
) -> uvicorn.Server:
    limits = settings.api_limits()
    broker = broker_from_url(mqtt_url) if mqtt_url else None
    config = uvicorn.Config(
        create_app(
            database_url=database_url,
            limits=limits,
            broker=(broker.host, broker.port) if broker else None,
            timezone=settings.timezone,
            open_data_policy=OpenDataPolicy(
                k=settings.open_data_k,
                license=settings.open_data_license,
                publisher=settings.open_data_publisher,
                timezone=settings.timezone,
            ),
        ),
        host=settings.api_host,
        port=settings.api_port,
        log_level="warning",
        lifespan="on",
    )
    return _ApiServer(config)


@contextlib.asynccontextmanager
async def serving(server: uvicorn.Server) -> AsyncIterator[None]:
    """Serve the API in a task for the duration."""
    task = asyncio.create_task(server.serve(), name="citytel-api")
    try:
        yield
    finally:
        server.should_exit = True
        await task


def _ground_truth(settings: Settings) -> Path | None:
    if settings.sim_fault_rate <= 0:
        return None
    path = settings.sim_ground_truth or settings.var_dir / "ground-truth.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


async def up(settings: Settings, *, simulate: bool = True) -> None:
    """Run everything until cancelled (Ctrl-C)."""
    with local_servers(settings) as ends:
        await migrate(settings, ends.database_url)
        broker = broker_from_url(ends.mqtt_url)
        async with contextlib.AsyncExitStack() as stack:
            ingest = await stack.enter_async_context(
                ingester(settings, ends.database_url, ends.mqtt_url)
            )
            await stack.enter_async_context(
                serving(api_server(settings, ends.database_url, ends.mqtt_url))
            )
            log.info(
                "API on http://%s:%d (try /healthz, /docs)", settings.api_host, settings.api_port
            )
            sim = None
            if simulate:
                city = build_city(
                    seed=settings.sim_seed,
                    streetlights=settings.sim_streetlights,
                    environment=settings.sim_environment,
                    traffic=settings.sim_traffic,
                    gateways=settings.sim_gateways,
                )
                sim = await stack.enter_async_context(
                    Simulation(
                        city,
                        host=broker.host,
                        port=broker.port,
                        seed=settings.sim_seed,
                        interval_s=settings.sim_interval_s,
                        prefix=settings.topic_prefix,
                        fault_rate=settings.sim_fault_rate,
                        ground_truth=_ground_truth(settings),
                    )
                )
            log.info(
                "citytel is up: database %s, broker %s; Ctrl-C stops",
                ends.database_url,
                ends.mqtt_url,
            )
            log.info(
                "an API key for /v1: CITYTEL_DATABASE_URL=%s citytel apikey create --role reader",
                ends.database_url,
            )
            # The ingester's loop ends only by failing: then stop everything, loudly.
            ingesting = asyncio.create_task(ingest.wait(), name="citytel-ingest-watch")
            while not ingesting.done():
                await asyncio.wait({ingesting}, timeout=10)
                s = ingest.stats
                log.info(
                    "stored %d messages, %d values, %d duplicates, dead letters %s%s",
                    s.messages,
                    s.values,
                    s.duplicates,
                    dict(s.dead_letters) or "none",
                    f"; simulator sent {sim.stats.messages} messages" if sim else "",
                )
            await ingesting
