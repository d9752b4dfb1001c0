"""Anomalies: episodes the ingester's detectors opened and closed."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from api import cursors
from api.deps import Conn, get_role
from api.models import Anomaly, AnomalyPage, Kind, Rfc3339, Severity
from api.routes.common import PAGE_MAX, PROTECTED
from storage import queries

router = APIRouter(
    prefix="/v1", tags=["anomalies"], dependencies=[Depends(get_role)], responses=PROTECTED
)


@router.get("/anomalies")
async def anomalies(
    conn: Conn,
    start: Annotated[
        Rfc3339 | None, Query(alias="from", description="Still open at or ended after")
    ] = None,
    end: Annotated[Rfc3339 | None, Query(alias="to", description="Started before")] = None,
    kind: Kind | None = None,
    device: str | None = None,
    gateway: Annotated[
        str | None, Query(description="The gateway's own episodes and its devices'")
    ] = None,
    metric: str | None = None,
    detector: Annotated[str | None, Query(examples=["lamp_out", "deviation"])] = None,
    severity: Severity | None = None,
    state: Literal["open", "closed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = 100,
    cursor: str | None = None,
) -> AnomalyPage:
    """Episodes, newest first, filtered; a page at a time (keyset pagination)."""
    f = queries.AnomalyFilter(
        start=start,
        end=end,
        kind=kind,
        device=device,
        gateway=gateway,
        metric=metric,
        detector=detector,
        severity=severity,
        state=state,
    )
    rows = await queries.list_anomalies(
        conn, f, after=cursors.anomaly_after(cursor), limit=limit + 1
    )
    items = [Anomaly.model_validate({**r, "open": r["ended_at"] is None}) for r in rows[:limit]]
    last = items[-1] if items else None
    more = len(rows) > limit and last is not None
    return AnomalyPage(
        items=items,
        next_cursor=cursors.encode([last.started_at.isoformat(), last.id])
        if more and last
        else None,
    )
