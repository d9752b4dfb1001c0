"""Gateways: online/offline, last seen, message rate, lost messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from api.deps import ApiLimits, Conn, get_role
from api.models import Gateway, Gateways, GatewayStatus
from api.problems import NOT_FOUND, ProblemError, response
from api.routes.common import PROTECTED
from storage import queries

router = APIRouter(
    prefix="/v1", tags=["gateways"], dependencies=[Depends(get_role)], responses=PROTECTED
)

Lookback = Annotated[
    int, Query(ge=60, le=7 * 86400, description="Seconds back for rate and lost messages")
]


def _gateway(row: dict[str, Any], lookback_s: int) -> Gateway:
    return Gateway.model_validate(
        {**row, "lookback_s": lookback_s, "message_rate": row["messages"] / lookback_s}
    )


@router.get("/gateways")
async def gateways(
    conn: Conn, limits: ApiLimits, status: GatewayStatus | None = None, lookback: Lookback = 3600
) -> Gateways:
    """Every gateway: status, last seen, message rate and lost messages over ``lookback``."""
    since = datetime.now(UTC) - timedelta(seconds=lookback)
    gap = limits.seq_epoch_gap
    rows = await queries.list_gateways(conn, since=since, status=status, epoch_gap=gap)
    return Gateways(items=[_gateway(r, lookback) for r in rows])


@router.get("/gateways/{gateway_id}", responses=response(NOT_FOUND))
async def gateway(
    conn: Conn,
    limits: ApiLimits,
    gateway_id: Annotated[str, Path(examples=["gw-01"])],
    lookback: Lookback = 3600,
) -> Gateway:
    """One gateway."""
    since = datetime.now(UTC) - timedelta(seconds=lookback)
    gap = limits.seq_epoch_gap
    rows = await queries.list_gateways(conn, since=since, gateway=gateway_id, epoch_gap=gap)
    if not rows:
        raise ProblemError(NOT_FOUND, f"no gateway {gateway_id!r}")
    return _gateway(rows[0], lookback)
