"""Anomalies: episodes the ingester's detectors opened and closed, and the people's
lifecycle on top: open -> acknowledged (by whom, when, a comment) -> resolved."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query

from api import cursors
from api.deps import Conn, get_role
from api.models import Episode, EpisodeAction, EpisodePage, Kind, Lifecycle, Rfc3339, Severity
from api.problems import FORBIDDEN, NOT_FOUND, ProblemError, response
from api.routes.common import PAGE_MAX, PROTECTED
from api.session import CallerDep
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
    state: Annotated[
        Literal["open", "closed"] | None, Query(description="The detector's side: ended or not")
    ] = None,
    lifecycle: Annotated[
        Lifecycle | Literal["unresolved"] | None,
        Query(description="The people's side; `unresolved`: open or acknowledged"),
    ] = None,
    q: Annotated[
        str | None,
        Query(description="Text in the device or gateway id or a comment", max_length=200),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = 100,
    cursor: str | None = None,
) -> EpisodePage:
    """Episodes, newest first, filtered; a page at a time (keyset pagination)."""
    f = queries.EpisodeFilter(
        start=start,
        end=end,
        kind=kind,
        device=device,
        gateway=gateway,
        metric=metric,
        detector=detector,
        severity=severity,
        state=state,
        lifecycle=lifecycle,
        q=q,
    )
    rows = await queries.list_anomalies(
        conn, f, after=cursors.anomaly_after(cursor), limit=limit + 1
    )
    items = [to_episode(r) for r in rows[:limit]]
    last = items[-1] if items else None
    more = len(rows) > limit and last is not None
    return EpisodePage(
        items=items,
        next_cursor=cursors.encode([last.started_at.isoformat(), last.id])
        if more and last
        else None,
    )


def to_episode(row: dict[str, Any]) -> Episode:
    """The API's anomaly from a row of ``storage.queries`` (the live stream's too)."""
    return Episode.model_validate({**row, "open": row["ended_at"] is None})


EpisodeId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The anomaly's id")]


@router.get("/anomalies/{episode_id}", responses=response(NOT_FOUND))
async def anomaly(conn: Conn, episode_id: EpisodeId) -> Episode:
    """One episode with its lifecycle."""
    row = await queries.get_anomaly(conn, episode_id)
    if row is None:
        raise ProblemError(NOT_FOUND, f"no anomaly {episode_id}")
    return to_episode(row)


@router.post("/anomalies/{episode_id}/ack", responses=response(NOT_FOUND, FORBIDDEN))
async def acknowledge(
    conn: Conn, caller: CallerDep, episode_id: EpisodeId, action: EpisodeAction
) -> Episode:
    """Acknowledge an episode: who (the key's name), when, a comment. The first
    acknowledgement stands; a later one changes nothing and returns the first."""
    row = await queries.acknowledge(
        conn, episode_id, by=caller.holder.label, comment=action.comment
    )
    if row is None:
        raise ProblemError(NOT_FOUND, f"no anomaly {episode_id}")
    return to_episode(row)


@router.post("/anomalies/{episode_id}/resolve", responses=response(NOT_FOUND, FORBIDDEN))
async def resolve(
    conn: Conn, caller: CallerDep, episode_id: EpisodeId, action: EpisodeAction
) -> Episode:
    """Resolve an episode (acknowledging it too if nobody had); resolved episodes stay
    searchable (`lifecycle=resolved`, `q`). Resolving twice changes nothing."""
    row = await queries.resolve(conn, episode_id, by=caller.holder.label, comment=action.comment)
    if row is None:
        raise ProblemError(NOT_FOUND, f"no anomaly {episode_id}")
    return to_episode(row)
