"""Errors as RFC 9457 problem details (``application/problem+json``), in one place.

Every error the API returns has a stable ``type``: a URI reference ``/problems/<slug>``,
resolved against the API's own address, where ``GET`` describes it. Library errors are
storage's errors are mapped here and nowhere else (storage has already translated
psycopg's): a statement timeout becomes 504, an unreachable database or an exhausted
pool 503, a value the database refuses 422.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException
from starlette.routing import compile_path

from devices.errors import StorageError, StorageRejected, StorageTimeout, StorageUnavailable

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"


@dataclass(frozen=True, slots=True)
class ProblemType:
    slug: str
    status: int
    title: str
    description: str

    @property
    def uri(self) -> str:
        return f"/problems/{self.slug}"


UNAUTHORIZED = ProblemType(
    "unauthorized", 401, "API key missing or invalid",
    "Send a valid API key: `Authorization: Bearer <key>`; `citytel apikey create` makes one.",
)  # fmt: skip
FORBIDDEN = ProblemType(
    "forbidden", 403, "Not allowed for this key's role", "This route needs an admin key."
)
NOT_FOUND = ProblemType("not-found", 404, "Not found", "No such resource.")
METHOD_NOT_ALLOWED = ProblemType(
    "method-not-allowed", 405, "Method not allowed", "The route exists; not with this method."
)
VALIDATION = ProblemType(
    "validation", 422, "Invalid request", "A parameter is missing or malformed; see `errors`."
)
TOO_MANY_POINTS = ProblemType(
    "too-many-points", 400, "Too many points",
    "The answer would exceed the points allowed per response (`max_points`): shorten the"
    " time range, use a wider bucket, or ask for fewer series; exports stream without a cap.",
)  # fmt: skip
UNAVAILABLE = ProblemType(
    "unavailable", 503, "Database unavailable", "The database cannot be reached; retry later."
)
OVERLOADED = ProblemType(
    "overloaded", 503, "Too many requests in flight",
    "The API is serving as many requests as it admits at once: retry after `Retry-After`"
    " seconds.",
)  # fmt: skip
TIMEOUT = ProblemType(
    "timeout", 504, "Query timed out",
    "The query ran past the statement timeout: narrow the request (time range, series).",
)  # fmt: skip
CATALOG_REFUSED = ProblemType(
    "catalog-refused", 409, "Catalog version refused",
    "The catalog would change what stored values mean (a metric id removed, renamed,"
    " re-kinded or given another unit, a name reused, a kind in use removed); see `reasons`.",
)  # fmt: skip
INTERNAL = ProblemType("internal", 500, "Internal error", "A bug: the server log has details.")
HTTP_ERROR = ProblemType("http-error", 400, "HTTP error", "The HTTP request itself was refused.")

TYPES = {
    t.slug: t
    for t in (
        UNAUTHORIZED,
        FORBIDDEN,
        NOT_FOUND,
        METHOD_NOT_ALLOWED,
        VALIDATION,
        TOO_MANY_POINTS,
        UNAVAILABLE,
        OVERLOADED,
        TIMEOUT,
        CATALOG_REFUSED,
        INTERNAL,
        HTTP_ERROR,
    )
}


class Problem(BaseModel):
    """An RFC 9457 problem; extension members depend on the type."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "/problems/too-many-points",
                    "title": "Too many points",
                    "status": 400,
                    "detail": "up to 86402 points (2 series x 43201 buckets); the limit is"
                    " 20000: shorten the time range, use a wider bucket or fewer series",
                    "instance": "/v1/series",
                    "points": 86402,
                    "max_points": 20000,
                }
            ]
        },
    )
    type: str = Field(description="A stable URI reference naming the kind of problem")
    title: str
    status: int
    detail: str | None = None
    instance: str | None = Field(default=None, description="The request path")


class ProblemError(Exception):
    """Raised by routes and dependencies; rendered as a problem response."""

    def __init__(self, kind: ProblemType, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or kind.title)
        self.kind, self.detail, self.extra = kind, detail, extra


def problem_response(
    request: Request, kind: ProblemType, detail: str | None = None, **extra: Any
) -> JSONResponse:
    body = {
        "type": kind.uri,
        "title": kind.title,
        "status": kind.status,
        "detail": detail,
        "instance": request.url.path,
        **extra,
    }
    headers = {"WWW-Authenticate": "Bearer"} if kind is UNAUTHORIZED else None
    return JSONResponse(
        jsonable_encoder(body), status_code=kind.status, media_type=MEDIA_TYPE, headers=headers
    )


async def _problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    return problem_response(request, exc.kind, exc.detail, **exc.extra)


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
        for e in exc.errors()
    ]
    detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
    return problem_response(request, VALIDATION, detail, errors=errors)


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    # 400 is the body failing to parse (not UTF-8, say): as invalid as a wrong field
    kind = {400: VALIDATION, 404: NOT_FOUND, 405: METHOD_NOT_ALLOWED}.get(exc.status_code)
    if kind is None:
        kind = ProblemType("http-error", exc.status_code, "HTTP error", HTTP_ERROR.description)
    response = problem_response(request, kind, str(exc.detail))
    response.headers.update(exc.headers or {})
    if exc.status_code == 405:  # Starlette lists the first matching route's methods only
        response.headers["Allow"] = ", ".join(_allowed(request))
    return response


def _allowed(request: Request) -> list[str]:
    """The methods the OpenAPI document lists for the request's path."""
    methods: set[str] = set()
    for template, item in request.app.openapi()["paths"].items():
        if compile_path(template)[0].fullmatch(request.url.path):
            methods |= {m.upper() for m in item}
    return sorted(methods)


async def _database(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, StorageRejected):  # a NUL in a text parameter, say
        return problem_response(request, VALIDATION, f"a parameter the database refuses: {exc}")
    if isinstance(exc, StorageTimeout):
        return problem_response(request, TIMEOUT, TIMEOUT.description)
    if isinstance(exc, StorageUnavailable):
        log.warning("database unavailable: %s", exc)
        return problem_response(request, UNAVAILABLE, UNAVAILABLE.description)
    log.exception("database error", exc_info=exc)
    return problem_response(request, INTERNAL, "a database error; the server log has details")


def install(app: FastAPI) -> None:
    """Render every error of ``app`` as a problem."""
    app.add_exception_handler(ProblemError, _problem)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(StorageError, _database)


def response(*kinds: ProblemType) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for these problems (``app.openapi`` fixes the media type)."""
    out: dict[int | str, dict[str, Any]] = {}
    for k in kinds:
        described = out.get(k.status, {}).get("description")
        text = f"{described}; {k.title}" if described else k.title
        out[k.status] = {"model": Problem, "description": text}
    return out


def problem_openapi(schema: dict[str, Any]) -> dict[str, Any]:
    """Give every error response the ``application/problem+json`` media type."""
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            for status, resp in operation.get("responses", {}).items():
                if status.isdigit() and int(status) >= 400:
                    resp["content"] = {
                        MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}
                    }
    return schema
