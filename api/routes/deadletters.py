"""Dead letters, for admins: what was refused and why, oldest first, a page at a time."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from api.deps import Conn, require_admin
from api.problems import FORBIDDEN, response
from api.routes.common import PROTECTED
from storage.deadletters import list_dead_letters

router = APIRouter(
    prefix="/v1/dead-letters",
    tags=["admin"],
    dependencies=[Depends(require_admin)],
    responses={**PROTECTED, **response(FORBIDDEN)},
)


class DeadLetter(BaseModel):
    """One refused piece of input (a message, a reading, a value or a device)."""

    id: int
    received_at: datetime
    topic: str
    reason: str = Field(description="A stable code (docs/contract.md lists them)")
    detail: str
    gateway_id: str | None
    seq: int | None
    payload_base64: str = Field(description="The refused part, as received or re-encoded")
    replayed_at: datetime | None = Field(description="When `citytel deadletters replay` stored it")


class DeadLetters(BaseModel):
    items: list[DeadLetter]
    next_after: int | None = Field(description="Pass as `after` for the next page; null: last")


@router.get("")
async def dead_letters(
    conn: Conn,
    reason: Annotated[str | None, Query(max_length=64, pattern=r"^[a-z_]+$")] = None,
    since: datetime | None = None,
    replayed: bool | None = None,
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DeadLetters:
    """Dead letters by reason, time and whether replayed."""
    rows = await list_dead_letters(
        conn, reason=reason, since=since, replayed=replayed, after_id=after, limit=limit
    )
    items = [
        DeadLetter(
            id=r.id,
            received_at=r.received_at,
            topic=r.topic,
            reason=r.reason,
            detail=r.detail,
            gateway_id=r.gateway_id,
            seq=r.seq,
            payload_base64=base64.b64encode(r.payload).decode(),
            replayed_at=r.replayed_at,
        )
        for r in rows
    ]
    return DeadLetters(items=items, next_after=rows[-1].id if len(rows) == limit else None)
