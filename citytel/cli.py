"""The ``citytel`` command: the composition root that reads settings and wires the parts."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import simulators.cli
from citytel import alerts_cli, catalog_cli, deadletters_cli, lifecycle, supervisor
from citytel.settings import Settings, broker_from_url
from devices.errors import CitytelError

log = logging.getLogger("citytel")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = Settings()
    logging.getLogger("gmqtt").setLevel(logging.WARNING)  # it logs every SUBACK at INFO
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.run(settings, args) or 0)
    except CitytelError as exc:
        log.error("%s", exc)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="citytel", description=__doc__)
    sub = parser.add_subparsers(required=True, metavar="command")
    p = sub.add_parser("up", help="run broker, database, ingester, API and a simulated city")
    p.add_argument("--no-simulator", action="store_true", help="do not start the simulator")
    p.set_defaults(run=_up)
    p = sub.add_parser("ingest", help="run the ingester against CITYTEL_DATABASE_URL/MQTT_URL")
    p.set_defaults(run=_ingest)
    p = sub.add_parser("api", help="serve the HTTP API")
    p.set_defaults(run=_api)
    p = sub.add_parser("status", help="where the parts of `citytel up` run and if healthy")
    p.set_defaults(run=_status)
    p = sub.add_parser("simulate", help="publish a simulated city to CITYTEL_MQTT_URL")
    simulators.cli.add_arguments(p)
    p.set_defaults(run=_simulate)
    p = sub.add_parser(
        "provision", help="add a broker user (password, ACL lines) or a gateway's HTTP token"
    )
    p.add_argument("role", choices=["gateway", "ingester", "http"])
    p.add_argument("username", help="for a gateway: its gateway id")
    p.add_argument("--password-file", type=Path, default=Path("/etc/mosquitto/citytel/passwd"))
    p.add_argument("--acl-file", type=Path, default=Path("/etc/mosquitto/citytel/acl"))
    p.set_defaults(run=_provision)
    p = sub.add_parser("detect", help="score a CSV series (timestamp,value) for backtesting")
    p.add_argument("--input", required=True, help="CSV of timestamp,value")
    p.add_argument("--output", help="CSV to write (default: standard output)")
    p.add_argument("--threshold", type=float, default=0.5, help="score that opens an alert")
    p.add_argument("--metric", help="apply this catalog metric's settings (e.g. speed_kmh)")
    p.set_defaults(run=_detect)
    key = sub.add_parser("apikey", help="API keys")
    keysub = key.add_subparsers(required=True, metavar="action")
    p = keysub.add_parser("create", help="create a key and print it (shown only this once)")
    p.add_argument("--role", choices=["reader", "admin"], required=True)
    p.add_argument("--name", default="", help="who or what the key is for")
    p.set_defaults(run=_apikey_create)
    db = sub.add_parser("db", help="database maintenance")
    dbsub = db.add_subparsers(required=True, metavar="action")
    p = dbsub.add_parser("upgrade", help="apply pending migrations")
    p.set_defaults(run=_db_upgrade)
    catalog_cli.add_parser(sub)
    deadletters_cli.add_parser(sub)
    alerts_cli.register(sub)
    return parser


async def _http_token(settings: Settings, gateway_id: str) -> str:
    from storage.database import connect
    from storage.gateway_tokens import create_token

    conn = await connect(_require(settings.database_url, "CITYTEL_DATABASE_URL"), autocommit=True)
    try:
        return await create_token(conn, gateway_id)
    finally:
        await conn.close()


def _run_value(coro: Coroutine[Any, Any, str]) -> str:
    return asyncio.run(coro)


def _run(coro: Coroutine[Any, Any, None]) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(coro)


def _require(value: str | None, name: str) -> str:
    if not value:
        raise CitytelError(f"set CITYTEL_{name} (or use `citytel up`, which starts servers)")
    return value


def _up(settings: Settings, args: argparse.Namespace) -> int:
    main = supervisor.up(settings, simulate=not args.no_simulator)
    return lifecycle.run(main, stop_timeout_s=settings.stop_timeout_s)


def _ingest(settings: Settings, args: argparse.Namespace) -> int:
    database_url = _require(settings.database_url, "DATABASE_URL")
    mqtt_url = _require(settings.mqtt_url, "MQTT_URL")
    main = supervisor.ingest(settings, database_url, mqtt_url)
    return lifecycle.run(main, stop_timeout_s=settings.stop_timeout_s)


def _api(settings: Settings, args: argparse.Namespace) -> int:
    database_url = _require(settings.database_url, "DATABASE_URL")
    main = supervisor.api(settings, database_url)
    return lifecycle.run(main, stop_timeout_s=settings.stop_timeout_s)


def _status(settings: Settings, args: argparse.Namespace) -> int:
    from citytel.status import show

    return show(settings.var_dir, sys.stdout)


def _simulate(settings: Settings, args: argparse.Namespace) -> int:
    url = _require(settings.mqtt_url, "MQTT_URL")
    broker = broker_from_url(url, ca_file=settings.mqtt_ca_file)
    return simulators.cli.simulate(
        args, broker=broker, prefix=settings.topic_prefix, defaults=settings
    )


def _provision(settings: Settings, args: argparse.Namespace) -> None:
    from citytel.provision import provision

    if args.role == "http":
        print(f"token: {_run_value(_http_token(settings, args.username))}")
        print(f"(for POST /v1/ingest/{args.username}: Authorization: Bearer <token>)")
        return

    made = provision(
        args.username,
        role=args.role,
        password_file=args.password_file,
        acl_file=args.acl_file,
        prefix=settings.topic_prefix,
    )
    print(
        f"user:     {made.username}\npassword: {made.password}\n"
        f"(hashed into {args.password_file}; ACL in {args.acl_file}:)\n\n{made.acl}"
    )


def _detect(settings: Settings, args: argparse.Namespace) -> int:
    from citytel.detect import main as detect

    try:
        return detect(args.input, args.output, args.threshold, args.metric)
    except OSError as exc:
        raise CitytelError(str(exc)) from exc


def _apikey_create(settings: Settings, args: argparse.Namespace) -> None:
    from storage.database import connect, map_errors
    from storage.queries import create_key

    async def run() -> None:
        conn = await connect(_require(settings.database_url, "DATABASE_URL"), autocommit=True)
        try:
            with map_errors():
                made = await create_key(conn, role=args.role, name=args.name)
        finally:
            await conn.close()
        print(made.key)
        print(f"(key {made.id}, role {made.role}; shown only now, stored as a digest)",
              file=sys.stderr)  # fmt: skip

    _run(run())


def _db_upgrade(settings: Settings, args: argparse.Namespace) -> None:
    _run(supervisor.migrate(settings, _require(settings.database_url, "DATABASE_URL")))


if __name__ == "__main__":
    sys.exit(main())
