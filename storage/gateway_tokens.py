"""Tokens for gateways that POST over HTTP: created once (shown then), stored as digests."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

import psycopg

from storage.database import map_errors

TOKEN_PREFIX = "ctg_"


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def create_token(conn: psycopg.AsyncConnection[Any], gateway_id: str) -> str:
    """A new random token (256 bits) for ``gateway_id``; only its digest is stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with map_errors():
        await conn.execute(
            "INSERT INTO gateway_tokens (gateway_id, digest) VALUES (%s, %s)",
            (gateway_id, _digest(token)),
        )
    return token


async def gateway_of(conn: psycopg.AsyncConnection[Any], token: str) -> str | None:
    """The gateway a valid token belongs to, or None."""
    with map_errors():
        cur = await conn.execute(
            "SELECT gateway_id FROM gateway_tokens WHERE digest = %s AND revoked_at IS NULL",
            (_digest(token),),
        )
        row = await cur.fetchone()
    return str(row[0]) if row else None
