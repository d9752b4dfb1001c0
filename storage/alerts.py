"""The alert outbox: endpoints, rules, and notifications claimed, delivered or retried.

Notifications are queued by a trigger of ``episodes`` (migration 0010) in the same
transaction as the episode change; this module only reads and completes them.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row


@dataclass(frozen=True, slots=True)
class Notification:
    """One notification to deliver to one endpoint."""

    id: int
    url: str
    secret: str
    idempotency_key: str
    payload: dict[str, Any]
    attempts: int
    """Attempts made before this one."""


async def create_endpoint(
    conn: psycopg.AsyncConnection[Any], *, url: str, name: str = ""
) -> dict[str, Any]:
    """A new endpoint with a fresh signing secret (returned with it)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "INSERT INTO alert_endpoints (url, name, secret) VALUES (%s, %s, %s)"
            " RETURNING id, name, url, secret, enabled, created_at",
            (url, name, "whsec_" + secrets.token_urlsafe(32)),
        )
        row = await cur.fetchone()
        assert row is not None
        return row


async def list_endpoints(conn: psycopg.AsyncConnection[Any]) -> list[dict[str, Any]]:
    """Every endpoint, without its secret."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT id, name, url, enabled, created_at FROM alert_endpoints ORDER BY id"
        )
        return await cur.fetchall()


_RULE_FIELDS = (
    "endpoint", "kind", "metric", "detector", "min_severity", "gateway",
    "min_lon", "min_lat", "max_lon", "max_lat", "changes",
)  # fmt: skip


async def create_rule(conn: psycopg.AsyncConnection[Any], rule: dict[str, Any]) -> dict[str, Any]:
    """A new rule; ``rule`` has the fields of ``alert_rules`` (None: any)."""
    columns = ", ".join(_RULE_FIELDS)
    values = ", ".join(f"%({f})s" for f in _RULE_FIELDS)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"INSERT INTO alert_rules ({columns}) VALUES ({values}) RETURNING id, {columns}",
            rule,
        )
        row = await cur.fetchone()
        assert row is not None
        return row


async def list_rules(conn: psycopg.AsyncConnection[Any]) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"SELECT id, {', '.join(_RULE_FIELDS)} FROM alert_rules ORDER BY id")
        return await cur.fetchall()


async def delete_rule(conn: psycopg.AsyncConnection[Any], rule_id: int) -> bool:
    cur = await conn.execute("DELETE FROM alert_rules WHERE id = %s", (rule_id,))
    return cur.rowcount == 1


async def list_outbox(
    conn: psycopg.AsyncConnection[Any], *, state: str | None, limit: int
) -> list[dict[str, Any]]:
    """Notifications newest first; ``state``: pending, delivered or failed."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT id, endpoint, episode, change, idempotency_key, created_at, attempts,"
            " next_attempt_at, delivered_at, failed_at, last_error,"
            " CASE WHEN delivered_at IS NOT NULL THEN 'delivered'"
            "      WHEN failed_at IS NOT NULL THEN 'failed' ELSE 'pending' END AS state"
            " FROM alert_outbox WHERE %(state)s::text IS NULL OR %(state)s ="
            " CASE WHEN delivered_at IS NOT NULL THEN 'delivered'"
            "      WHEN failed_at IS NOT NULL THEN 'failed' ELSE 'pending' END"
            " ORDER BY id DESC LIMIT %(limit)s",
            {"state": state, "limit": limit},
        )
        return await cur.fetchall()


# A claim is a lease: the notification is not due again until the lease ends, so a
# dispatcher that dies mid-delivery leaves it to be tried again (same idempotency key).
_CLAIM = """
UPDATE alert_outbox o SET next_attempt_at = clock_timestamp() + %(lease)s
FROM alert_endpoints e
WHERE e.id = o.endpoint AND o.id IN (
    SELECT id FROM alert_outbox
    WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= clock_timestamp()
    ORDER BY next_attempt_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
RETURNING o.id, e.url, e.secret, o.idempotency_key, o.payload, o.attempts
"""


async def claim_due(
    conn: psycopg.AsyncConnection[Any], *, limit: int, lease: timedelta
) -> list[Notification]:
    """Notifications due now, leased for ``lease`` to this caller."""
    cur = await conn.execute(_CLAIM, {"limit": limit, "lease": lease})
    return [Notification(*row) for row in await cur.fetchall()]


async def delivered(conn: psycopg.AsyncConnection[Any], notification_id: int) -> None:
    await conn.execute(
        "UPDATE alert_outbox SET delivered_at = clock_timestamp(), attempts = attempts + 1,"
        " last_error = NULL WHERE id = %s",
        (notification_id,),
    )


async def retry_later(
    conn: psycopg.AsyncConnection[Any],
    notification_id: int,
    *,
    error: str,
    delay: timedelta | None,
) -> None:
    """Record a failed attempt; try again after ``delay``, or give up (None)."""
    await conn.execute(
        "UPDATE alert_outbox SET attempts = attempts + 1, last_error = %(error)s,"
        " next_attempt_at = clock_timestamp() + coalesce(%(delay)s, interval '0'),"
        " failed_at = CASE WHEN %(delay)s::interval IS NULL THEN clock_timestamp() END"
        " WHERE id = %(id)s",
        {"id": notification_id, "error": error[:1000], "delay": delay},
    )
