"""Checkpoints of the detectors' state, so a restarted ingester keeps its baselines and
does not open again the episodes it had closed (or open twice the ones still open)."""

from __future__ import annotations

import psycopg
from psycopg.rows import TupleRow

from storage.database import map_errors


async def save_checkpoint(conn: psycopg.AsyncConnection[TupleRow], name: str, state: bytes) -> None:
    """Replace the checkpoint called ``name``."""
    with map_errors():
        await conn.execute(
            "INSERT INTO detector_state (name, state) VALUES (%s, %s) ON CONFLICT (name)"
            " DO UPDATE SET state = excluded.state, saved_at = now()",
            (name, state),
        )


async def load_checkpoint(conn: psycopg.AsyncConnection[TupleRow], name: str) -> bytes | None:
    """The checkpoint called ``name``, or None if there is none."""
    with map_errors():
        cur = await conn.execute("SELECT state FROM detector_state WHERE name = %s", (name,))
        row = await cur.fetchone()
    return None if row is None else bytes(row[0])
