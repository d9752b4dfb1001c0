"""Open data: CSV and GeoJSON of devices and of aggregated series, streamed.

Only aggregates of series are exported (``bucket`` is required), never raw readings.
Rows come through a server-side cursor in chunks, so a year of hourly buckets never
sits in memory. The first chunk is fetched before the response starts, so that a bad
request or a timeout is still a problem response rather than a cut stream.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from api.deps import Conn, get_role
from api.models import Bucket
from api.routes.common import PROTECTED, DeviceFilterQ
from api.routes.series import AggQ, Devices, End, Metrics, Start, Tz, request_of
from storage import queries

router = APIRouter(
    prefix="/v1/exports", tags=["open data"], dependencies=[Depends(get_role)], responses=PROTECTED
)

_T = TypeVar("_T", str, bytes)

CSV = "text/csv; charset=utf-8"
GEOJSON = "application/geo+json"
DEVICE_COLUMNS = ["device_id", "kind", "gateway", "latitude", "longitude"]


def _csv(rows: Iterable[Iterable[Any]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode()


async def _streamed(
    chunks: AsyncGenerator[bytes, None], media_type: str, name: str
) -> StreamingResponse:
    first = await anext(chunks)  # errors surface here, before the response starts

    async def body() -> AsyncIterator[bytes]:
        try:
            yield first
            async for chunk in chunks:
                yield chunk
        finally:
            await chunks.aclose()

    return StreamingResponse(
        body(),
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _ok(media_type: str) -> dict[int | str, dict[str, Any]]:
    schema = {"type": "object"} if media_type == GEOJSON else {"type": "string"}
    return {200: {"content": {media_type: {"schema": schema}}}}


BucketR = Annotated[Bucket, Query(description="Required: exports are aggregates only")]


@router.get("/devices.csv", response_class=StreamingResponse, responses=_ok(CSV))
async def devices_csv(conn: Conn, f: DeviceFilterQ) -> StreamingResponse:
    """Devices as CSV: id, kind, gateway, latitude, longitude."""

    async def chunks() -> AsyncIterator[bytes]:
        async for rows in queries.stream_devices(conn, f):
            yield _csv([[r[c] for c in DEVICE_COLUMNS] for r in rows])

    return await _streamed(_headed(_csv([DEVICE_COLUMNS]), chunks()), CSV, "devices.csv")


def _feature(lon: float | None, lat: float | None, properties: dict[str, Any]) -> str:
    geometry = {"type": "Point", "coordinates": [lon, lat]} if lon is not None else None
    return json.dumps({"type": "Feature", "geometry": geometry, "properties": properties})


async def _collection(features: AsyncIterator[list[str]]) -> AsyncGenerator[bytes, None]:
    async for chunk in _headed('{"type": "FeatureCollection", "features": [', _joined(features)):
        yield chunk.encode()
    yield b"]}\n"


async def _joined(features: AsyncIterator[list[str]]) -> AsyncIterator[str]:
    first = True
    async for batch in features:
        if batch:
            yield ("" if first else ",") + ",\n".join(batch)
            first = False


async def _headed(head: _T, chunks: AsyncIterator[_T]) -> AsyncGenerator[_T, None]:
    """``head`` joined to the first chunk: the first chunk sent has touched the database."""
    async for chunk in chunks:
        yield head + chunk
        head = head[:0]
    if head:
        yield head


@router.get("/devices.geojson", response_class=StreamingResponse, responses=_ok(GEOJSON))
async def devices_geojson(conn: Conn, f: DeviceFilterQ) -> StreamingResponse:
    """Devices as a GeoJSON FeatureCollection of points (RFC 7946: longitude first)."""

    async def features() -> AsyncIterator[list[str]]:
        async for rows in queries.stream_devices(conn, f):
            yield [
                _feature(r["longitude"], r["latitude"], {c: r[c] for c in DEVICE_COLUMNS[:3]})
                for r in rows
            ]

    return await _streamed(_collection(features()), GEOJSON, "devices.geojson")


async def _series_rows(
    conn: Any, device: list[str], metric: list[str], req: queries.SeriesRequest
) -> AsyncIterator[list[tuple[queries.SeriesKey, str, float]]]:
    keys = await queries.resolve_series(conn, device, metric)
    z = ZoneInfo(req.tz)
    if not keys:
        return
    async for rows in queries.stream_bucketed(conn, keys, req):
        yield [(k, t.astimezone(z).isoformat(), v) for k, t, v in rows]


@router.get("/series.csv", response_class=StreamingResponse, responses=_ok(CSV))
async def series_csv(
    conn: Conn, device: Devices, metric: Metrics, start: Start, end: End, bucket: BucketR,
    tz: Tz, agg: AggQ = "avg",
) -> StreamingResponse:  # fmt: skip
    """Aggregated series as CSV: device_id, metric, unit, bucket start, value."""
    req = request_of(start, end, bucket, agg, tz)

    async def chunks() -> AsyncIterator[bytes]:
        async for rows in _series_rows(conn, device, metric, req):
            yield _csv([[k.device_id, k.metric_name, k.unit, t, v] for k, t, v in rows])

    head = _csv([["device_id", "metric", "unit", "time", agg]])
    return await _streamed(_headed(head, chunks()), CSV, "series.csv")


@router.get("/series.geojson", response_class=StreamingResponse, responses=_ok(GEOJSON))
async def series_geojson(
    conn: Conn, device: Devices, metric: Metrics, start: Start, end: End, bucket: BucketR,
    tz: Tz, agg: AggQ = "avg",
) -> StreamingResponse:  # fmt: skip
    """Aggregated series as GeoJSON: a point feature per device, metric and bucket."""
    req = request_of(start, end, bucket, agg, tz)
    where = await queries.device_locations(conn, device)

    async def features() -> AsyncIterator[list[str]]:
        async for rows in _series_rows(conn, device, metric, req):
            yield [
                _feature(*where[k.device_id], {"device_id": k.device_id, "metric": k.metric_name,
                         "unit": k.unit, "time": t, "agg": agg, "value": v})
                for k, t, v in rows
            ]  # fmt: skip

    return await _streamed(_collection(features()), GEOJSON, "series.geojson")
