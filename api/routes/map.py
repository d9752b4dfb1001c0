"""The map's data: every placed device, compact enough for a city of 300,000."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from api.deps import Conn, get_role
from api.models import DeviceState, Kind, MapData
from api.routes.common import PROTECTED
from storage import queries

router = APIRouter(
    prefix="/v1", tags=["devices"], dependencies=[Depends(get_role)], responses=PROTECTED
)


# The JSON is made by PostgreSQL (storage/queries/map.py) and passed through as it is:
# validating 300,000 devices into MapData again would cost more than the query.
@router.get("/map", response_model=MapData)
async def device_map(
    conn: Conn,
    kind: Kind | None = None,
    gateway: Annotated[str | None, Query(description="A gateway id")] = None,
    state: Annotated[DeviceState | None, Query(description="Only devices in this state")] = None,
) -> Response:
    """Every device with a position: id, longitude, latitude, and codes for its kind,
    gateway and state, as parallel arrays (`MapData`)."""
    body = await queries.map_json(conn, kind=kind, gateway=gateway, state=state)
    return Response(body, media_type="application/json")
