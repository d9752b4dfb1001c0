"""Opaque keyset cursors: the sort key of the last item of a page, base64url JSON."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from api.problems import VALIDATION, ProblemError


def encode(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, default=str).encode()).decode().rstrip("=")


def _decode(cursor: str) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise ProblemError(VALIDATION, "cursor: not a cursor this API gave out") from exc
    if not isinstance(key, list):
        raise ProblemError(VALIDATION, "cursor: not a cursor this API gave out")
    return key


def device_after(cursor: str | None) -> str | None:
    if not cursor:
        return None
    key = _decode(cursor)
    if len(key) != 1 or not isinstance(key[0], str):
        raise ProblemError(VALIDATION, "cursor: not a device cursor")
    return key[0]


def anomaly_after(cursor: str | None) -> tuple[datetime, int] | None:
    if not cursor:
        return None
    key = _decode(cursor)
    try:
        started, id_ = datetime.fromisoformat(key[0]), int(key[1])
    except (IndexError, TypeError, ValueError) as exc:
        raise ProblemError(VALIDATION, "cursor: not an anomaly cursor") from exc
    if started.tzinfo is None or len(key) != 2:
        raise ProblemError(VALIDATION, "cursor: not an anomaly cursor")
    return started, id_
