"""The map's data: every placed device, compact enough for a city of 300,000.

Making the document for a whole city costs PostgreSQL a good part of a second, so answers
are kept for at most ``MAX_AGE_S`` per set of filters, and dropped at once when the live
hub hears a change of an episode or a gateway's status (while anyone follows
``/v1/live``, as the console does). One query runs per set of filters at a time; callers
arriving meanwhile wait for its answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from api.deps import Conn, Pool, get_role
from api.models import DeviceState, Kind, MapData
from api.routes.common import PROTECTED
from api.routes.live import hub_of
from storage import queries

MAX_AGE_S = 2.0

router = APIRouter(
    prefix="/v1", tags=["devices"], dependencies=[Depends(get_role)], responses=PROTECTED
)

Key = tuple[str | None, str | None, str | None, bool]


class MapCache:
    """Answers by filters, each kept ``max_age_s``; ``clear`` drops them all."""

    def __init__(self, max_age_s: float) -> None:
        self.max_age_s = max_age_s
        self._answers: dict[Key, tuple[float, str]] = {}
        self._locks: dict[Key, asyncio.Lock] = {}
        self._generation = 0

    def clear(self) -> None:
        self._generation += 1
        self._answers.clear()

    def _fresh(self, key: Key) -> str | None:
        found = self._answers.get(key)
        if found and time.monotonic() - found[0] < self.max_age_s:
            return found[1]
        return None

    async def get(self, key: Key, make: Callable[[], Awaitable[str]]) -> str:
        if (body := self._fresh(key)) is not None:
            return body
        async with self._locks.setdefault(key, asyncio.Lock()):
            if (body := self._fresh(key)) is not None:
                return body
            started, generation = time.monotonic(), self._generation
            body = await make()
            if generation == self._generation:  # no change announced while it ran
                self._answers[key] = (started, body)
            return body


def _cache(request: Request, pool: Pool) -> MapCache:
    cache: MapCache | None = getattr(request.app.state, "map_cache", None)
    if cache is None:
        cache = request.app.state.map_cache = MapCache(MAX_AGE_S)
        hub_of(request, pool).on_change.append(cache.clear)
    return cache


# The JSON is made by PostgreSQL (storage/queries/map.py) and passed through as it is:
# validating 300,000 devices into MapData again would cost more than the query.
@router.get("/map", response_model=MapData)
async def device_map(
    conn: Conn,
    cache: Annotated[MapCache, Depends(_cache)],
    kind: Kind | None = None,
    gateway: Annotated[str | None, Query(description="A gateway id")] = None,
    state: Annotated[DeviceState | None, Query(description="Only devices in this state")] = None,
    ids: Annotated[bool, Query(description="Include `device_id` (else it is empty)")] = False,
) -> Response:
    """Every device with a position: longitude, latitude, and codes for its kind,
    gateway and state, as parallel arrays (`MapData`); with `ids=true` its id too. At
    most two seconds old."""

    def make() -> Awaitable[str]:
        return queries.map_json(conn, kind=kind, gateway=gateway, state=state, ids=ids)

    body = await cache.get((kind, gateway, state, ids), make)
    return Response(body, media_type="application/json", headers={"Cache-Control": "no-store"})
