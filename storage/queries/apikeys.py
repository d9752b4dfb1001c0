"""API keys: created once (the key is shown then, never again), stored as a digest."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

KEY_PREFIX = "ctk_"


@dataclass(frozen=True, slots=True)
class CreatedKey:
    id: int
    key: str
    """The secret itself: give it to its user now; only its digest is stored."""
    role: str
    name: str
    created_at: datetime


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


async def create_key(
    conn: psycopg.AsyncConnection[Any], *, role: str, name: str = ""
) -> CreatedKey:
    """A new random key (256 bits) with ``role`` (``reader`` or ``admin``)."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    cur = await conn.execute(
        "INSERT INTO api_keys (prefix, digest, role, name) VALUES (%s, %s, %s, %s)"
        " RETURNING id, created_at",
        (key[:10], _digest(key), role, name),
    )
    row = await cur.fetchone()
    assert row is not None
    return CreatedKey(row[0], key, role, name, row[1])


async def role_of(conn: psycopg.AsyncConnection[Any], key: str) -> str | None:
    """The role of a valid (known, not revoked) key, else None."""
    cur = await conn.execute(
        "SELECT role FROM api_keys WHERE digest = %s AND revoked_at IS NULL", (_digest(key),)
    )
    row = await cur.fetchone()
    return str(row[0]) if row else None


async def list_keys(conn: psycopg.AsyncConnection[Any]) -> list[dict[str, Any]]:
    """Every key, without its secret: id, prefix, role, name, created_at, revoked_at."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT id, prefix, role, name, created_at, revoked_at FROM api_keys ORDER BY id"
        )
        return await cur.fetchall()


async def revoke_key(conn: psycopg.AsyncConnection[Any], key_id: int) -> bool:
    """Revoke a key; False when there is no such key still valid."""
    cur = await conn.execute(
        "UPDATE api_keys SET revoked_at = now() WHERE id = %s AND revoked_at IS NULL", (key_id,)
    )
    return cur.rowcount == 1
