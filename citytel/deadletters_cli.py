"""``citytel deadletters list|replay``: what was refused, and replaying what can be fixed."""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import datetime
from typing import Any

from citytel.replay import replay
from citytel.settings import Settings
from devices.errors import ConfigurationError
from storage.database import connect
from storage.deadletters import REPLAYABLE, list_dead_letters


def add_parser(sub: Any) -> None:
    """Register ``deadletters`` and its actions on the ``citytel`` subparsers."""
    parser = sub.add_parser("deadletters", help="dead letters: list, replay the fixable ones")
    actions = parser.add_subparsers(required=True, metavar="action")
    p = actions.add_parser("list", help="print dead letters as JSON lines, oldest first")
    p.add_argument("--reason")
    p.add_argument("--since", type=datetime.fromisoformat, help="RFC 3339 time")
    p.add_argument("--limit", type=int, default=100)
    p.set_defaults(run=_list)
    p = actions.add_parser("replay", help="store refused values the catalog now accepts")
    p.add_argument("--reason", required=True, choices=REPLAYABLE)
    p.add_argument("--since", type=datetime.fromisoformat, help="RFC 3339 time")
    p.set_defaults(run=_replay)


def _url(settings: Settings) -> str:
    if not settings.database_url:
        raise ConfigurationError("set CITYTEL_DATABASE_URL")
    return settings.database_url


def _list(settings: Settings, args: argparse.Namespace) -> int:
    async def run() -> None:
        conn = await connect(_url(settings), autocommit=True)
        try:
            rows = await list_dead_letters(
                conn, reason=args.reason, since=args.since, limit=args.limit
            )
        finally:
            await conn.close()
        for r in rows:
            line = {
                "id": r.id,
                "received_at": r.received_at.isoformat(),
                "topic": r.topic,
                "reason": r.reason,
                "detail": r.detail,
                "gateway_id": r.gateway_id,
                "replayed_at": r.replayed_at.isoformat() if r.replayed_at else None,
            }
            print(json.dumps(line))

    asyncio.run(run())
    return 0


def _replay(settings: Settings, args: argparse.Namespace) -> int:
    report = asyncio.run(
        replay(
            _url(settings),
            reason=args.reason,
            since=args.since,
            config=settings.ingester_config(),
        )
    )
    print(
        f"replayed {report.replayed} dead letters ({report.values} values stored);"
        f" {report.still_refused} still refused"
    )
    return 0
