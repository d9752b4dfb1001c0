"""Who is calling: a Bearer API key, or the console's session cookie (CSRF-checked).

The console signs in by posting an API key once to ``POST /v1/session``; the answer sets
a session cookie (HttpOnly: no script reads it; SameSite=Strict: no other site's page
sends it) and gives a CSRF token that every state-changing request made with the cookie
must echo in the ``X-CSRF-Token`` header. A Bearer key needs no CSRF token: a browser
never adds one by itself. No key ever travels in a URL.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

import psycopg
from fastapi import Depends, Request

from api.problems import FORBIDDEN, UNAUTHORIZED, ProblemError
from storage.queries import sessions

COOKIE = "citytel_session"
CSRF_HEADER = "X-CSRF-Token"
SESSION_TTL = timedelta(hours=12)
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Caller:
    """The holder of the key behind a request, and how it came."""

    holder: sessions.KeyHolder
    via: str  # "bearer" or "session"

    @property
    def role(self) -> str:
        return self.holder.role


async def authenticate(
    conn: psycopg.AsyncConnection[Any], request: Request, bearer: str | None
) -> Caller:
    """The caller of ``request``, from its Bearer key or its session cookie; 401 without
    either, 403 for a cookie-borne unsafe request without the session's CSRF token."""
    if bearer is not None:
        holder = await sessions.key_holder(conn, bearer)
        if holder is None:
            raise ProblemError(UNAUTHORIZED, "unknown or revoked API key")
        caller = Caller(holder, "bearer")
    elif token := request.cookies.get(COOKIE):
        found = await sessions.session_holder(conn, token)
        if found is None:
            raise ProblemError(UNAUTHORIZED, "the session has ended: sign in again")
        holder, csrf = found
        sent = request.headers.get(CSRF_HEADER, "")
        if request.method not in _SAFE and not hmac.compare_digest(sent, csrf):
            raise ProblemError(FORBIDDEN, f"a signed-in request that changes data needs the"
                               f" session's {CSRF_HEADER} header")  # fmt: skip
        caller = Caller(holder, "session")
    else:
        raise ProblemError(UNAUTHORIZED, "no API key: send `Authorization: Bearer <key>`")
    request.state.caller = caller
    return caller


def get_caller(request: Request) -> Caller:
    """The caller that ``api.deps.get_role`` authenticated (depend on it first)."""
    caller: Caller = request.state.caller
    return caller


CallerDep = Annotated[Caller, Depends(get_caller)]
