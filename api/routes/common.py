"""What several routes share: the problems every protected route may return, parsing."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Depends, Query

from api.deps import Conn
from api.models import GatewayStatus, Kind
from api.problems import (
    TIMEOUT,
    UNAUTHORIZED,
    UNAVAILABLE,
    VALIDATION,
    ProblemError,
    response,
)
from storage import catalog, queries

PROTECTED = response(UNAUTHORIZED, VALIDATION, UNAVAILABLE, TIMEOUT)
PAGE_MAX = 1000


def zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ProblemError(VALIDATION, f"tz: unknown time zone {tz!r} (IANA names)") from exc


def bbox(text: str | None) -> tuple[float, float, float, float] | None:
    """``minLon,minLat,maxLon,maxLat`` (GeoJSON and OGC API order); empty: none."""
    if not text:
        return None
    try:
        x0, y0, x1, y1 = (float(p) for p in text.split(","))
    except ValueError as exc:
        raise ProblemError(VALIDATION, "bbox: four numbers, minLon,minLat,maxLon,maxLat") from exc
    if not (-180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90):
        raise ProblemError(VALIDATION, "bbox: need -180 <= minLon <= maxLon <= 180 and the"
                           " same for latitudes within ±90")  # fmt: skip
    return x0, y0, x1, y1


async def _device_filter(
    conn: Conn,
    kind: Kind | None = None,
    gateway: Annotated[str | None, Query(description="A gateway id")] = None,
    status: Annotated[GatewayStatus | None, Query(description="Its gateway's status")] = None,
    bbox_: Annotated[
        str | None,
        Query(alias="bbox", description="minLon,minLat,maxLon,maxLat", examples=["-88,41,-87,42"]),
    ] = None,
    q: Annotated[str | None, Query(description="Part of the device id", max_length=64)] = None,
) -> queries.DeviceFilter:
    """The device list's filters (the list and its exports)."""
    if kind is not None and not await catalog.is_kind(conn, kind):
        raise ProblemError(VALIDATION, f"kind: {kind!r} is not a kind of the catalog in force")
    return queries.DeviceFilter(kind=kind, gateway=gateway, status=status, bbox=bbox(bbox_), q=q)


DeviceFilterQ = Annotated[queries.DeviceFilter, Depends(_device_filter)]
