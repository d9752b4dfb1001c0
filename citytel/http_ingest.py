"""``POST /v1/ingest/{gateway_id}``: gateways that can only speak HTTPS.

The body is a contract v1 telemetry message (``application/json``, or
``application/msgpack``) or a SenML pack (``application/senml+json``, ``..+cbor``, when
the SenML format is enabled). It goes through the ingester's own batch path
(``Ingester.submit``) and the answer comes after the commit: 200 with the values stored
and the parts dead-lettered; a message whose identity is stored already is a
``duplicate`` and stores nothing again, so a gateway may retry until it gets an answer.
Authenticated per gateway: ``Authorization: Bearer <token>``, a token from
``citytel provision http <gateway_id>``. Lives in the composition root: it joins the
ingester (``citytel ingest``'s probes' port, or the API's address under ``citytel up``).
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from devices.contract import TELEMETRY, TELEMETRY_MSGPACK
from devices.errors import StorageError
from ingest.ingester import Ingester, Overloaded
from storage.database import connect
from storage.gateway_tokens import gateway_of

_CHANNELS = {
    "application/json": TELEMETRY,
    "application/msgpack": TELEMETRY_MSGPACK,
    "application/senml+json": "senml",
    "application/senml+cbor": "senml/cbor",
}
_PROBLEM = "application/problem+json"
_TOKEN_CACHE_S = 60.0


def _problem(status: int, slug: str, title: str, detail: str, **headers: str) -> JSONResponse:
    body = {"type": f"/problems/{slug}", "title": title, "status": status, "detail": detail}
    return JSONResponse(body, status_code=status, media_type=_PROBLEM, headers=headers or None)


async def _body(request: Request, limit: int) -> bytes | None:
    """The request's body, read no further than ``limit`` bytes (None: it is larger)."""
    parts, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
    return b"".join(parts)


def ingest_route(ingester: Ingester, *, database_url: str, max_payload_bytes: int) -> Route:
    """The route, bound to a running ingester."""
    known: dict[str, tuple[str | None, float]] = {}  # token -> (gateway, checked at)

    async def owner(token: str) -> str | None:
        hit = known.get(token)
        if hit is not None and time.monotonic() - hit[1] < _TOKEN_CACHE_S:
            return hit[0]
        conn = await connect(database_url, autocommit=True)
        try:
            gateway = await gateway_of(conn, token)
        finally:
            await conn.close()
        known[token] = (gateway, time.monotonic())
        return gateway

    async def post(request: Request) -> JSONResponse:
        gateway_id = request.path_params["gateway_id"]
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            return _problem(
                401, "unauthorized", "Unauthorized", "send Authorization: Bearer <token>"
            )
        try:
            if await owner(auth.removeprefix("Bearer ")) != gateway_id:
                return _problem(403, "forbidden", "Forbidden", f"not a token of {gateway_id!r}")
        except StorageError:
            return _problem(
                503, "unavailable", "Unavailable", "database unavailable", **{"Retry-After": "5"}
            )
        media = request.headers.get("content-type", "application/json").split(";")[0].strip()
        channel = _CHANNELS.get(media)
        if channel is None:
            return _problem(415, "unsupported-media-type", "Unsupported media type", media)
        body = await _body(request, max_payload_bytes)
        if body is None:
            return _problem(
                413, "payload-too-large", "Payload too large", f"limit {max_payload_bytes} bytes"
            )
        try:
            outcome = await ingester.submit(gateway_id, body, channel)
        except Overloaded as exc:
            return _problem(
                429, "overloaded", "Too many requests", str(exc), **{"Retry-After": "1"}
            )
        return JSONResponse(
            {
                "values": outcome.values,
                "duplicate": outcome.duplicate,
                "dead_letters": [{"reason": r, "detail": d} for r, d in outcome.dead_letters],
            }
        )

    # the gateway id is checked by the ingester as a topic's is (invalid_topic)
    return Route("/v1/ingest/{gateway_id:str}", post, methods=["POST"])
