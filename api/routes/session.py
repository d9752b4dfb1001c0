"""Console sign-in: an API key exchanged for a session cookie; who am I; sign out."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response, status

from api import session
from api.deps import Conn, get_role
from api.models import SessionInfo, SignIn
from api.problems import UNAUTHORIZED, ProblemError, response
from api.routes.common import PROTECTED
from api.session import CallerDep
from storage.queries import sessions

router = APIRouter(prefix="/v1/session", tags=["session"])


def _set_cookie(request: Request, out: Response, value: str, *, max_age: int) -> None:
    out.set_cookie(
        session.COOKIE,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


@router.post("", responses=response(UNAUTHORIZED))
async def sign_in(conn: Conn, request: Request, out: Response, body: SignIn) -> SessionInfo:
    """Exchange an API key for a session cookie (HttpOnly, SameSite=Strict) and the CSRF
    token that POSTs made with it must send in `X-CSRF-Token`."""
    holder = await sessions.key_holder(conn, body.key)
    if holder is None:
        raise ProblemError(UNAUTHORIZED, "unknown or revoked API key")
    new = await sessions.open_session(conn, holder, ttl=session.SESSION_TTL)
    _set_cookie(request, out, new.token, max_age=int(session.SESSION_TTL.total_seconds()))
    return SessionInfo(role=holder.role, name=holder.label, csrf_token=new.csrf)  # type: ignore[arg-type]


@router.get("", dependencies=[Depends(get_role)], responses=PROTECTED)
async def whoami(conn: Conn, request: Request, caller: CallerDep) -> SessionInfo:
    """Who the caller is; with the session cookie, its CSRF token again (after a reload)."""
    csrf = None
    if caller.via == "session":
        found = await sessions.session_holder(conn, request.cookies[session.COOKIE])
        csrf = found[1] if found else None
    return SessionInfo(role=caller.role, name=caller.holder.label, csrf_token=csrf)  # type: ignore[arg-type]


@router.delete("", status_code=status.HTTP_204_NO_CONTENT)
async def sign_out(conn: Conn, request: Request) -> Response:
    """End the session (its cookie is cleared and no longer accepted)."""
    token = request.cookies.get(session.COOKIE)
    if token:
        await sessions.close_session(conn, token)
    out = Response(status_code=status.HTTP_204_NO_CONTENT)
    _set_cookie(request, out, "", max_age=0)
    return out
