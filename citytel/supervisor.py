"""Runs citytel's parts as one service: ``citytel up``, ``ingest`` and ``api``.

Every part is an async context manager entered on an ``AsyncExitStack`` in start-up order
(servers, API, ingester, simulator) and left in the reverse order; while they run, one
``asyncio.TaskGroup`` watches them all. A part that ends on its own is a failure: the
group stops, the others are stopped in order and the command exits non-zero with the
cause logged. SIGTERM (how systemd, Docker and Kubernetes stop a service) and SIGINT
(Ctrl-C) cancel the main task instead, which stops everything in the same order:

1. the simulator stops publishing;
2. the ingester stops taking messages, finishes the batch in hand within its grace
   (else leaves it unacknowledged, for the broker to send again), writes its open
   windows and checkpoints its detectors (``Ingester.__aexit__``);
3. the API stops accepting connections and finishes the requests in hand;
4. the local Mosquitto and PostgreSQL stop.

If the parts are not stopped ``stop_timeout_s`` after the signal (or on a second signal),
whatever is still waiting is cancelled, and the local servers are stopped all the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.routing import Route

from api.app import create_app
from api.routes.open_data import OpenDataPolicy
from citytel import status
from citytel.alerts import AlertDispatcher, Smtp
from citytel.health import health_app
from citytel.http_ingest import ingest_route
from citytel.lifecycle import Watch, supervise
from citytel.local import LocalMosquitto, LocalPostgres, Ports
from citytel.settings import Settings, broker_from_url
from devices.errors import ServerError
from ingest.ingester import Ingester
from ingest.metrics import exposition, registry_of
from simulators.city import build_city
from simulators.run import Simulation
from storage.database import connect
from storage.migrate import upgrade

log = logging.getLogger("citytel")

# -- the parts -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Endpoints:
    database_url: str
    mqtt_url: str


@contextlib.contextmanager
def local_servers(settings: Settings, watches: dict[str, Watch]) -> Iterator[Endpoints]:
    """The configured servers, or local ones started under ``var_dir`` for the duration,
    on ports chosen once and remembered there; their watchers go into ``watches``."""
    with contextlib.ExitStack() as stack:
        ports = Ports(settings.var_dir / "ports.json")
        database_url = settings.database_url
        if database_url is None:
            pg = LocalPostgres(
                settings.var_dir / "postgres", port=ports.get("postgres", settings.local_pg_port)
            )
            database_url = stack.enter_context(pg).url
            watches["postgres"] = pg.watch
        mqtt_url = settings.mqtt_url
        if mqtt_url is None:
            broker = LocalMosquitto(
                settings.var_dir / "mosquitto",
                port=ports.get("mosquitto", settings.local_mqtt_port),
            )
            mqtt_url = stack.enter_context(broker).url
            watches["mosquitto"] = broker.watch
        yield Endpoints(database_url, mqtt_url)


async def migrate(settings: Settings, database_url: str) -> None:
    conn = await connect(database_url, autocommit=True)
    try:
        report = await upgrade(conn, timescaledb=settings.timescaledb)
    finally:
        await conn.close()
    log.info("database ready in %s mode", report.mode)


def ingester(settings: Settings, database_url: str, mqtt_url: str) -> Ingester:
    if settings.share_group and settings.detect:
        log.warning(
            "share group %r with detection on: each ingester of the group sees only part of"
            " every series, so detectors score fragments and several ingesters may open"
            " episodes for the same device (docs/operations.md); set CITYTEL_DETECT=false"
            " on all but one, or run one ingester",
            settings.share_group,
        )
    return Ingester(
        database_url=database_url,
        broker=broker_from_url(mqtt_url, ca_file=settings.mqtt_ca_file),
        config=settings.ingester_config(),
    )


class _ApiServer(uvicorn.Server):
    """uvicorn without its own signal handlers: signals belong to the supervisor."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def api_server(
    settings: Settings, database_url: str, mqtt_url: str | None = None
) -> uvicorn.Server:
    limits = settings.api_limits()
    broker = broker_from_url(mqtt_url) if mqtt_url else None
    app = create_app(
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
    )
    return _uvicorn(app, settings.api_host, settings.api_port)


def _uvicorn(app: Any, host: str, port: int) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    return _ApiServer(config)


@contextlib.asynccontextmanager
async def serving(server: uvicorn.Server) -> AsyncIterator[Watch]:
    """Serve the API for the duration, once it listens; yields its watch."""

    async def serve() -> None:
        try:
            await server.serve()
        except SystemExit:  # uvicorn's way of saying it could not bind (logged above)
            raise ServerError(
                f"the API could not listen on {server.config.host}:{server.config.port}"
            ) from None

    task = asyncio.create_task(serve(), name="citytel-api")
    try:
        # polled: uvicorn sets a flag when it listens, and offers nothing to await
        while not server.started and not task.done():  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        if task.done():
            await task
            raise ServerError("the API stopped while starting (see above)")
        yield lambda: asyncio.shield(task)
    finally:
        server.should_exit = True
        with contextlib.suppress(ServerError):
            await task


def _ground_truth(settings: Settings) -> Path | None:
    if settings.sim_fault_rate <= 0:
        return None
    path = settings.sim_ground_truth or settings.var_dir / "ground-truth.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _simulation(settings: Settings, mqtt_url: str) -> Simulation:
    broker = broker_from_url(mqtt_url)
    city = build_city(
        seed=settings.sim_seed,
        streetlights=settings.sim_streetlights,
        environment=settings.sim_environment,
        traffic=settings.sim_traffic,
        gateways=settings.sim_gateways,
    )
    return Simulation(
        city,
        host=broker.host,
        port=broker.port,
        seed=settings.sim_seed,
        interval_s=settings.sim_interval_s,
        prefix=settings.topic_prefix,
        fault_rate=settings.sim_fault_rate,
        ground_truth=_ground_truth(settings),
    )


async def _report(ingest: Ingester, sim: Simulation | None, board: status.Published) -> None:
    """What was stored: on the board every 2 s, in the log every 10 s; never ends."""
    for tick in itertools.count(1):
        await asyncio.sleep(2)
        s = ingest.stats
        try:
            board.update(
                ingester={"messages": s.messages, "values": s.values, "held": ingest.held},
                simulator={"messages": sim.stats.messages} if sim else None,
            )
        except OSError as exc:  # status goes stale (and says so); the service goes on
            log.warning("could not write %s: %s", board.path, exc)
        if tick % 5 == 0:
            log.info(
                "stored %d messages, %d values, %d duplicates, dead letters %s%s",
                s.messages,
                s.values,
                s.duplicates,
                dict(s.dead_letters) or "none",
                f"; simulator sent {sim.stats.messages} messages" if sim else "",
            )


# -- the commands ----------------------------------------------------------------------


async def up(settings: Settings, *, simulate: bool = True) -> None:
    """Everything, with local servers where none is configured, until stopped."""
    watches: dict[str, Watch] = {}
    with status.claimed(settings.var_dir), local_servers(settings, watches) as ends:
        await migrate(settings, ends.database_url)
        async with contextlib.AsyncExitStack() as stack:
            server = api_server(settings, ends.database_url, ends.mqtt_url)
            watches["api"] = await stack.enter_async_context(serving(server))
            log.info(
                "API on http://%s:%d (try /healthz, /docs)", settings.api_host, settings.api_port
            )
            ingest = await stack.enter_async_context(
                ingester(settings, ends.database_url, ends.mqtt_url)
            )
            watches["ingester"] = ingest.wait
            registry = registry_of(ingest)  # the API's /metrics shows the ingester's too
            app = server.config.app
            assert isinstance(app, Starlette)
            app.state.process_metrics = lambda: exposition(registry)
            app.router.routes.insert(0, _http_ingest(settings, ingest, ends.database_url))
            if settings.alerts:  # the outbox's deliveries (docs/alerts.md)
                await stack.enter_async_context(
                    AlertDispatcher(database_url=ends.database_url, smtp=_smtp(settings))
                )
                log.info("alert dispatcher delivering the outbox")
            sim = None
            if simulate:
                sim = await stack.enter_async_context(_simulation(settings, ends.mqtt_url))
                watches["simulator"] = _forever_after(sim.wait)
            board = stack.enter_context(
                status.published(
                    settings.var_dir,
                    database_url=ends.database_url,
                    mqtt_url=ends.mqtt_url,
                    api_url=f"http://{settings.api_host}:{settings.api_port}",
                )
            )
            board.update(ingester={"messages": 0, "values": 0, "held": 0})
            watches["report"] = lambda: _report(ingest, sim, board)
            log.info(
                "citytel is up: database %s, broker %s; Ctrl-C or SIGTERM stops",
                ends.database_url,
                ends.mqtt_url,
            )
            log.info(
                "an API key for /v1: CITYTEL_DATABASE_URL=%s citytel apikey create --role reader",
                ends.database_url,
            )
            await supervise(watches)


def _http_ingest(settings: Settings, running: Ingester, database_url: str) -> Route:
    """POST /v1/ingest/{gateway_id} into this ingester (citytel.http_ingest)."""
    limit = settings.max_payload_bytes
    return ingest_route(running, database_url=database_url, max_payload_bytes=limit)


def _smtp(settings: Settings) -> Smtp | None:
    """The SMTP server for ``mailto:`` alert endpoints, from ``CITYTEL_SMTP_*``."""
    if not settings.smtp_host:
        return None
    return Smtp(
        host=settings.smtp_host,
        port=settings.smtp_port,
        sender=settings.smtp_sender,
        username=settings.smtp_username,
        password=settings.smtp_password,
        starttls=settings.smtp_starttls,
    )


def _forever_after(part: Watch) -> Watch:
    """A part whose normal end is no failure (a simulation with an end): watch it fail."""

    async def watch() -> None:
        await part()
        await asyncio.Event().wait()

    return watch


async def ingest(settings: Settings, database_url: str, mqtt_url: str) -> None:
    """The ingester alone (and its probes, on ``health_port``), until stopped."""
    async with contextlib.AsyncExitStack() as stack:
        running = await stack.enter_async_context(ingester(settings, database_url, mqtt_url))
        loop_runs = [True]

        async def watch() -> None:
            try:
                await running.wait()
            finally:
                loop_runs[0] = False

        watches: dict[str, Watch] = {"ingester": watch}
        if settings.health_port:
            registry = registry_of(running)
            app = health_app(
                running=lambda: loop_runs[0],
                database_url=database_url,
                broker=broker_from_url(mqtt_url, ca_file=settings.mqtt_ca_file),
                metrics=lambda: exposition(registry),
                extra=[_http_ingest(settings, running, database_url)],
                session=lambda: {
                    "connected": int(running.session.connected),
                    "session_takeovers": running.session.takeovers,
                    "sessions_lost": running.session.sessions_lost,
                },
            )
            server = _uvicorn(app, settings.health_host, settings.health_port)
            watches["health"] = await stack.enter_async_context(serving(server))
            log.info(
                "probes on http://%s:%d/healthz and /readyz",
                settings.health_host,
                settings.health_port,
            )
        await supervise(watches)


async def api(settings: Settings, database_url: str) -> None:
    """The API alone, until stopped."""
    async with serving(api_server(settings, database_url, settings.mqtt_url)) as watch:
        log.info("API on http://%s:%d", settings.api_host, settings.api_port)
        await supervise({"api": watch})
