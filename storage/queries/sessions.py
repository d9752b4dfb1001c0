"""Console sessions: an API key exchanged for a session token (only its digest stored)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg


@dataclass(frozen=True, slots=True)
class KeyHolder:
    """Who a valid key or session belongs to."""

    key_id: int
    role: str
    name: str
    prefix: str

    @property
    def label(self) -> str:
        """How the console names the holder: the key's name and prefix."""
        return f"{self.name} ({self.prefix})" if self.name else self.prefix


@dataclass(frozen=True, slots=True)
class NewSession:
    token: str
    """The cookie's value: given to the browser, only its digest is stored."""
    csrf: str
    holder: KeyHolder


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


_HOLDER = "SELECT k.id, k.role, k.name, k.prefix"


async def key_holder(conn: psycopg.AsyncConnection[Any], key: str) -> KeyHolder | None:
    """The holder of a valid (known, not revoked) API key."""
    cur = await conn.execute(
        _HOLDER + " FROM api_keys k WHERE k.digest = %s AND k.revoked_at IS NULL", (_digest(key),)
    )
    row = await cur.fetchone()
    return KeyHolder(*row) if row else None


async def open_session(
    conn: psycopg.AsyncConnection[Any], holder: KeyHolder, *, ttl: timedelta
) -> NewSession:
    """A new session for ``holder``, valid for ``ttl``; expired sessions are swept."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    await conn.execute("DELETE FROM console_sessions WHERE expires_at < now()")
    await conn.execute(
        "INSERT INTO console_sessions (digest, api_key, csrf, expires_at)"
        " VALUES (%s, %s, %s, now() + %s)",
        (_digest(token), holder.key_id, csrf, ttl),
    )
    return NewSession(token, csrf, holder)


async def session_holder(
    conn: psycopg.AsyncConnection[Any], token: str
) -> tuple[KeyHolder, str] | None:
    """The holder and CSRF token of a live session whose key is still valid."""
    cur = await conn.execute(
        _HOLDER + ", s.csrf FROM console_sessions s JOIN api_keys k ON k.id = s.api_key"
        " WHERE s.digest = %s AND s.expires_at > now() AND k.revoked_at IS NULL",
        (_digest(token),),
    )
    row = await cur.fetchone()
    return (KeyHolder(*row[:4]), row[4]) if row else None


async def close_session(conn: psycopg.AsyncConnection[Any], token: str) -> None:
    await conn.execute("DELETE FROM console_sessions WHERE digest = %s", (_digest(token),))
