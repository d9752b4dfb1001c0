"""Writing one ingest batch: message identities, values by binary COPY, dead letters.

The caller owns the transaction (``storage.database.transaction``): it writes the batch
here, then what derives from it (rollups), and commits once. A message whose identity
(gateway, seq) is already stored contributes nothing: neither values nor dead letters;
if it is stored with another content digest, ``WriteResult.conflicts`` says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg.rows import TupleRow

from devices.columns import NO_MESSAGE, NO_TIME, DeadLetterRow, MessageColumns, ValueColumns
from storage.copy import VALUES_COPY, encode_values
from storage.database import map_errors

_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(slots=True)
class WriteResult:
    """What a batch write stored."""

    messages: int = 0
    duplicates: int = 0
    values: int = 0
    dead_letters: list[DeadLetterRow] = field(default_factory=list)
    stored: ValueColumns | None = None
    """The values actually stored (the batch's, less those of duplicate messages)."""
    conflicts: list[tuple[int, int]] = field(default_factory=list)
    """(message index, stored digest) of duplicates whose stored content differs."""
    new: npt.NDArray[np.bool_] | None = None
    """Per message of the batch: stored now (else its identity was stored before)."""


_INSERT_MESSAGES = """
WITH new AS (
    INSERT INTO messages (gateway, seq, sent_at, received_at, readings, "values", digest)
    SELECT m.gateway, m.seq,
           CASE WHEN m.sent_at IS NULL THEN NULL
                ELSE 'epoch'::timestamptz + m.sent_at * INTERVAL '1 microsecond' END,
           'epoch'::timestamptz + m.received_at * INTERVAL '1 microsecond',
           m.readings, m.values, m.digest
    FROM unnest(%s::int4[], %s::int8[], %s::int8[], %s::int8[], %s::int4[], %s::int4[],
                %s::int8[])
         AS m (gateway, seq, sent_at, received_at, readings, values, digest)
    ORDER BY m.gateway, m.seq
    ON CONFLICT DO NOTHING
    RETURNING gateway, seq
), seen AS (
    UPDATE gateways g
    SET last_seen = now(), last_seq = GREATEST(g.last_seq, n.seq),
        messages_total = g.messages_total + n.n
    FROM (SELECT gateway, max(seq) AS seq, count(*) AS n FROM new GROUP BY gateway) AS n
    WHERE g.id = n.gateway
)
SELECT gateway, seq FROM new
"""

_COPY_DEAD_LETTERS = (
    "COPY dead_letters (received_at, topic, reason, detail, gateway_id, seq, payload) FROM STDIN"
)


_STORED_DIGESTS = """
SELECT m.gateway, m.seq, m.digest FROM messages m
JOIN unnest(%s::int4[], %s::int8[]) AS k (gateway, seq) USING (gateway, seq)
"""


async def write_batch(
    conn: psycopg.AsyncConnection[TupleRow],
    messages: MessageColumns,
    values: ValueColumns,
    dead_letters: list[DeadLetterRow],
) -> WriteResult:
    """Store a batch, in the caller's transaction; skips messages whose identity is stored."""
    with map_errors():
        new = await _insert_identities(conn, messages, values)
        kept_values = values.take(new[values.message]) if len(values) else values
        kept_letters = [d for d in dead_letters if d.message == NO_MESSAGE or new[d.message]]
        async with conn.cursor() as cur:
            if len(kept_values):
                async with cur.copy(VALUES_COPY) as copy:
                    await copy.write(
                        encode_values(
                            kept_values.time_us,
                            kept_values.device,
                            kept_values.metric,
                            kept_values.value,
                        )
                    )
            if kept_letters:
                await _copy_dead_letters(cur, kept_letters)
        conflicts = await _conflicts(conn, messages, new)
    n_new = int(new.sum())
    return WriteResult(
        n_new, len(messages) - n_new, len(kept_values), kept_letters, kept_values, conflicts, new
    )


async def write_dead_letters(
    conn: psycopg.AsyncConnection[TupleRow], rows: list[DeadLetterRow]
) -> None:
    """Store dead letters that no message identity guards (conflicts, refusals)."""
    if rows:
        with map_errors():
            async with conn.cursor() as cur:
                await _copy_dead_letters(cur, rows)


async def _conflicts(
    conn: psycopg.AsyncConnection[TupleRow], messages: MessageColumns, new: npt.NDArray[np.bool_]
) -> list[tuple[int, int]]:
    """Duplicates (not new) whose stored digest differs from theirs."""
    if messages.digest is None or new.all():
        return []
    old = np.flatnonzero(~new)
    cur = await conn.execute(
        _STORED_DIGESTS, (messages.gateway[old].tolist(), messages.seq[old].tolist())
    )
    stored = {(g, s): d for g, s, d in await cur.fetchall()}
    found = []
    for i in old.tolist():
        theirs = stored.get((int(messages.gateway[i]), int(messages.seq[i])))
        if theirs is not None and theirs != int(messages.digest[i]):
            found.append((i, int(theirs)))
    return found


async def _insert_identities(
    conn: psycopg.AsyncConnection[TupleRow], messages: MessageColumns, values: ValueColumns
) -> npt.NDArray[np.bool_]:
    n = len(messages)
    new = np.zeros(n, dtype=np.bool_)
    if n == 0:
        return new
    counts = np.bincount(values.message, minlength=n)
    readings = np.zeros(n, dtype=np.int64)
    if len(values):
        first = np.unique(values.reading, return_index=True)[1]
        readings = np.bincount(values.message[first], minlength=n)
    sent_at: list[int | None] = [None if t == NO_TIME else t for t in messages.sent_at_us.tolist()]
    cur = await conn.execute(
        _INSERT_MESSAGES,
        (
            messages.gateway.tolist(),
            messages.seq.tolist(),
            sent_at,
            messages.received_at_us.tolist(),
            readings.tolist(),
            counts.tolist(),
            None if messages.digest is None else messages.digest.tolist(),
        ),
    )
    keys = zip(messages.gateway.tolist(), messages.seq.tolist(), strict=True)
    index = {key: i for i, key in enumerate(keys)}
    for gateway, seq in await cur.fetchall():
        new[index[(gateway, seq)]] = True
    return new


async def _copy_dead_letters(cur: psycopg.AsyncCursor[TupleRow], rows: list[DeadLetterRow]) -> None:
    async with cur.copy(_COPY_DEAD_LETTERS) as copy:
        for d in rows:
            await copy.write_row(
                (
                    _timestamp(d.received_at_us),
                    d.topic,
                    d.reason,
                    d.detail,
                    d.gateway_id,
                    d.seq,
                    d.payload,
                )
            )


def _timestamp(unix_us: int) -> datetime:
    return _UNIX_EPOCH + timedelta(microseconds=unix_us)
