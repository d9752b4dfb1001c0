"""``citytel alerts test URL``: send a signed test notification to a webhook."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from citytel.alerts import send_test


def register(sub: Any) -> None:
    """Add ``alerts test`` to the ``citytel`` command's subparsers."""
    alerts = sub.add_parser("alerts", help="alert webhooks")
    action = alerts.add_subparsers(required=True, metavar="action")
    p = action.add_parser("test", help="send a signed test notification to URL")
    p.add_argument("url")
    p.add_argument("--secret", required=True, help="the endpoint's signing secret")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds")
    p.set_defaults(run=_test)


def _test(settings: Any, args: argparse.Namespace) -> int:
    error = asyncio.run(send_test(args.url, secret=args.secret, timeout_s=args.timeout))
    if error is not None:
        print(f"not delivered: {error}", file=sys.stderr)
        return 1
    print(f"delivered a signed test notification to {args.url}")
    return 0
