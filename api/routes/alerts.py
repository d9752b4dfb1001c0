"""Alerts, for admins: webhook endpoints, the rules that pick episodes for them, and the
outbox (what was delivered, what is pending, what failed after its last attempt)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Response, status

from api.deps import Conn, require_admin
from api.models import (
    AlertEndpoint,
    AlertEndpoints,
    AlertRule,
    AlertRules,
    CreatedAlertEndpoint,
    NewAlertEndpoint,
    NewAlertRule,
    Outbox,
    OutboxItem,
)
from api.problems import FORBIDDEN, NOT_FOUND, VALIDATION, ProblemError, response
from api.routes.common import PAGE_MAX, PROTECTED
from storage import alerts

router = APIRouter(
    prefix="/v1/alerts",
    tags=["alerts"],
    dependencies=[Depends(require_admin)],
    responses={**PROTECTED, **response(FORBIDDEN)},
)


@router.get("/endpoints")
async def list_endpoints(conn: Conn) -> AlertEndpoints:
    """Every webhook endpoint, without its secret."""
    rows = await alerts.list_endpoints(conn)
    return AlertEndpoints(items=[AlertEndpoint.model_validate(r) for r in rows])


@router.post("/endpoints", status_code=status.HTTP_201_CREATED)
async def create_endpoint(conn: Conn, new: NewAlertEndpoint) -> CreatedAlertEndpoint:
    """A webhook endpoint with a new signing secret, shown this once."""
    row = await alerts.create_endpoint(conn, url=new.url, name=new.name)
    return CreatedAlertEndpoint.model_validate(row)


def _rule(row: dict[str, Any]) -> AlertRule:
    box = (row["min_lon"], row["min_lat"], row["max_lon"], row["max_lat"])
    return AlertRule.model_validate({**row, "bbox": None if box[0] is None else list(box)})


@router.get("/rules")
async def list_rules(conn: Conn) -> AlertRules:
    return AlertRules(items=[_rule(r) for r in await alerts.list_rules(conn)])


@router.post(
    "/rules", status_code=status.HTTP_201_CREATED, responses=response(NOT_FOUND, VALIDATION)
)
async def create_rule(conn: Conn, new: NewAlertRule) -> AlertRule:
    """A rule: the episode changes matching it notify its endpoint."""
    if not any(e["id"] == new.endpoint for e in await alerts.list_endpoints(conn)):
        raise ProblemError(NOT_FOUND, f"no alert endpoint {new.endpoint}")
    box: list[float | None] = list(new.bbox) if new.bbox else [None] * 4
    if new.bbox and not (new.bbox[0] <= new.bbox[2] and new.bbox[1] <= new.bbox[3]):
        raise ProblemError(VALIDATION, "bbox: minLon <= maxLon and minLat <= maxLat")
    fields = new.model_dump(exclude={"bbox"})
    row = await alerts.create_rule(
        conn, {**fields, "min_lon": box[0], "min_lat": box[1], "max_lon": box[2], "max_lat": box[3]}
    )
    return _rule(row)


@router.delete(
    "/rules/{rule_id}", status_code=status.HTTP_204_NO_CONTENT, responses=response(NOT_FOUND)
)
async def delete_rule(conn: Conn, rule_id: Annotated[int, Path(ge=1, le=2**31 - 1)]) -> Response:
    if not await alerts.delete_rule(conn, rule_id):
        raise ProblemError(NOT_FOUND, f"no alert rule {rule_id}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/outbox")
async def outbox(
    conn: Conn,
    state: Literal["pending", "delivered", "failed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = 100,
) -> Outbox:
    """Notifications, newest first: failed ones stay here with their last error."""
    rows = await alerts.list_outbox(conn, state=state, limit=limit)
    return Outbox(items=[OutboxItem.model_validate(r) for r in rows])
