"""Load shedding: a bound on the requests in flight; beyond it, 503 at once.

Without a bound, every request past what the database pool serves waits for a connection
(up to the pool timeout), and under a burst the wait grows for everyone, cheap routes
included. With it, the excess is refused in microseconds with a problem that says when to
come back (``Retry-After``), and what is admitted stays fast. Liveness and readiness are
not counted and never refused: an orchestrator must see a busy API as alive.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from api.problems import OVERLOADED, problem_response

# /v1/live: Server-Sent Events streams stay open for as long as a console is: they would
# hold an in-flight slot each for hours, so they are not counted
EXEMPT = frozenset({"/healthz", "/readyz", "/v1/live"})


class Shedding:
    """ASGI middleware admitting at most ``max_in_flight`` requests at a time."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_in_flight: int,
        retry_after_s: int = 1,
        exempt: frozenset[str] = EXEMPT,
    ) -> None:
        self.app = app
        self.max_in_flight = max_in_flight
        self.in_flight = 0
        self._retry_after = str(retry_after_s)
        self._exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._exempt:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_in_flight:
            response = problem_response(
                Request(scope),
                OVERLOADED,
                f"{self.in_flight} requests in flight, the most this API serves at once;"
                f" retry in {self._retry_after} s",
                max_in_flight=self.max_in_flight,
            )
            response.headers["Retry-After"] = self._retry_after
            await response(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
