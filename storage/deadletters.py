"""Dead letters read back, and the replay of those the catalog can now take."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import TupleRow

from devices.columns import Partials, ValueColumns
from storage.copy import VALUES_COPY, encode_values
from storage.database import map_errors
from storage.rollups import upsert_partials

REPLAYABLE = ("unknown_metric", "metric_not_of_kind")
"""Reasons a new catalog version can cure."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One dead-letter row."""

    id: int
    received_at: datetime
    topic: str
    reason: str
    detail: str
    gateway_id: str | None
    seq: int | None
    payload: bytes
    replayed_at: datetime | None


_COLUMNS = "id, received_at, topic, reason, detail, gateway_id, seq, payload, replayed_at"


async def list_dead_letters(
    conn: psycopg.AsyncConnection[Any],
    *,
    reason: str | None = None,
    since: datetime | None = None,
    replayed: bool | None = None,
    after_id: int = 0,
    limit: int = 100,
) -> list[DeadLetter]:
    """Dead letters, oldest first, filtered by reason, time and whether replayed."""
    with map_errors():
        cur = await conn.execute(
            f"SELECT {_COLUMNS} FROM dead_letters"
            " WHERE id > %(after)s AND (%(reason)s::text IS NULL OR reason = %(reason)s)"
            " AND (%(since)s::timestamptz IS NULL OR received_at >= %(since)s)"
            " AND (%(replayed)s::bool IS NULL OR (replayed_at IS NOT NULL) = %(replayed)s)"
            " ORDER BY id LIMIT %(limit)s",
            {
                "after": after_id,
                "reason": reason,
                "since": since,
                "replayed": replayed,
                "limit": limit,
            },
        )
        return [DeadLetter(*row) for row in await cur.fetchall()]


async def claim_replayable(
    conn: psycopg.AsyncConnection[TupleRow],
    *,
    reason: str,
    since: datetime | None,
    after_id: int,
    limit: int,
) -> list[DeadLetter]:
    """Lock not-yet-replayed dead letters of ``reason`` after ``after_id`` for this
    transaction (others replaying at the same time skip them)."""
    with map_errors():
        cur = await conn.execute(
            f"SELECT {_COLUMNS} FROM dead_letters WHERE reason = %s AND replayed_at IS NULL"
            " AND (%s::timestamptz IS NULL OR received_at >= %s) AND id > %s"
            " ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
            (reason, since, since, after_id, limit),
        )
        return [DeadLetter(*row) for row in await cur.fetchall()]


async def store_replayed(
    conn: psycopg.AsyncConnection[TupleRow],
    replayed: list[int],
    values: ValueColumns,
    partials: dict[int, Partials],
) -> None:
    """In the caller's transaction: mark ``replayed`` dead letters, store their values
    and merge them into the rollups (``partials`` by window width)."""
    with map_errors():
        await conn.execute(
            "UPDATE dead_letters SET replayed_at = now() WHERE id = ANY(%s)", (replayed,)
        )
        if len(values):
            async with conn.cursor() as cur, cur.copy(VALUES_COPY) as copy:
                await copy.write(
                    encode_values(values.time_us, values.device, values.metric, values.value)
                )
    for width, p in partials.items():
        await upsert_partials(conn, width, p)
