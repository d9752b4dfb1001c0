"""Devices: the list, one device, and latest values."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from api import cursors
from api.deps import ApiLimits, Conn, get_role
from api.models import Device, DeviceDetail, DevicePage, Kind, Latest, LatestValue
from api.problems import NOT_FOUND, TOO_MANY_POINTS, ProblemError, response
from api.routes.common import PAGE_MAX, PROTECTED, DeviceFilterQ
from storage import queries

router = APIRouter(
    prefix="/v1", tags=["devices"], dependencies=[Depends(get_role)], responses=PROTECTED
)

DeviceId = Annotated[str, Path(description="The device's id", examples=["sl-0001"])]


@router.get("/devices")
async def list_devices(
    conn: Conn,
    f: DeviceFilterQ,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = 100,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the page before")] = None,
) -> DevicePage:
    """Devices in id order, filtered; a page at a time (keyset pagination)."""
    rows = await queries.list_devices(conn, f, after=cursors.device_after(cursor), limit=limit + 1)
    items = [Device.model_validate(r) for r in rows[:limit]]
    more = len(rows) > limit
    return DevicePage(
        items=items, next_cursor=cursors.encode([items[-1].device_id]) if more else None
    )


@router.get("/devices/{device_id}", responses=response(NOT_FOUND))
async def get_device(conn: Conn, device_id: DeviceId) -> DeviceDetail:
    """One device, its metrics with their last values, and when it was last seen."""
    row = await queries.get_device(conn, device_id)
    if row is None:
        raise ProblemError(NOT_FOUND, f"no device {device_id!r}")
    return DeviceDetail.model_validate(row)


@router.get("/devices/{device_id}/latest", responses=response(NOT_FOUND))
async def device_latest(conn: Conn, device_id: DeviceId) -> Latest:
    """The latest value of every metric of one device."""
    if not await queries.device_exists(conn, device_id):
        raise ProblemError(NOT_FOUND, f"no device {device_id!r}")
    rows = await queries.latest_values(conn, device_ids=[device_id], limit=1000)
    return Latest(items=[LatestValue.model_validate(r) for r in rows])


@router.get("/latest", responses=response(TOO_MANY_POINTS))
async def latest(
    conn: Conn,
    limits: ApiLimits,
    device: Annotated[
        list[str] | None, Query(description="Device ids (repeat the parameter)", max_length=2000)
    ] = None,
    kind: Kind | None = None,
    gateway: str | None = None,
) -> Latest:
    """The latest value of every metric of many devices at once (those named, or all of a
    kind or gateway); unknown device ids are left out."""
    rows = await queries.latest_values(
        conn, device_ids=device, kind=kind, gateway=gateway, limit=limits.max_points + 1
    )
    if len(rows) > limits.max_points:
        raise ProblemError(
            TOO_MANY_POINTS,
            f"more than {limits.max_points} latest values: name fewer devices (`device`),"
            " or filter by `kind` or `gateway`",
            max_points=limits.max_points,
        )
    return Latest(items=[LatestValue.model_validate(r) for r in rows])
