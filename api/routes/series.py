"""Time series: raw values or buckets, from rollups where they cover the request."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request

from api.deps import ApiLimits, Conn, get_role
from api.models import Agg, Bucket, Point, Rfc3339, SeriesData, SeriesResponse
from api.problems import TOO_MANY_POINTS, VALIDATION, ProblemError, response
from api.routes.common import PROTECTED, zone
from storage import queries

router = APIRouter(
    prefix="/v1", tags=["series"], dependencies=[Depends(get_role)], responses=PROTECTED
)

Devices = Annotated[
    list[str],
    Query(alias="device", min_length=1, max_length=100, description="Device ids (repeat)"),
]
Metrics = Annotated[
    list[str],
    Query(alias="metric", min_length=1, max_length=20, description="Metric names (repeat)"),
]
Start = Annotated[
    Rfc3339,
    Query(alias="from", description="RFC 3339 with offset", examples=["2026-03-07T00:00:00-06:00"]),
]
End = Annotated[
    Rfc3339,
    Query(alias="to", description="Exclusive", examples=["2026-03-10T00:00:00-05:00"]),
]
BucketQ = Annotated[Bucket | None, Query(description="Omit for raw values")]
AggQ = Annotated[Agg, Query(description="How values in a bucket combine")]


def _tz(
    request: Request,
    tz: Annotated[
        str | None,
        Query(
            description="IANA time zone of day buckets and of the times returned"
            " (default: the service's, `CITYTEL_TIMEZONE`)",
            max_length=64,
        ),
    ] = None,
) -> str:
    default: str = request.app.state.timezone
    return tz or default


Tz = Annotated[str, Depends(_tz)]
"""The request's ``tz``, or the configured time zone when it names none."""


def request_of(start: Start, end: End, bucket: Bucket, agg: Agg, tz: str) -> queries.SeriesRequest:
    zone(tz)
    if end <= start:
        raise ProblemError(VALIDATION, "`to` must be after `from`")
    return queries.SeriesRequest(start=start, end=end, bucket=bucket, agg=agg, tz=tz)


def too_many(points: int, n_series: int, limit: int, hint: str) -> ProblemError:
    return ProblemError(
        TOO_MANY_POINTS,
        f"up to {points} points for {n_series} series; the limit is {limit}: {hint}",
        points=points,
        max_points=limit,
    )


@router.get("/series", responses=response(TOO_MANY_POINTS))
async def series(
    conn: Conn,
    limits: ApiLimits,
    device: Devices,
    metric: Metrics,
    start: Start,
    end: End,
    tz: Tz,
    bucket: BucketQ = None,
    agg: AggQ = "avg",
) -> SeriesResponse:
    """One or several series (each device x each metric) over ``[from, to)``.

    With ``bucket``, values are aggregated per bucket with ``agg``: buckets under a day
    start on multiples of their width from the Unix epoch; ``1d`` buckets are local days
    in ``tz`` (a 23- or 25-hour day is one bucket). Answers come from the ingester's
    rollups where they cover the request and from raw readings elsewhere (``source``).
    """
    req = request_of(start, end, bucket or "1m", agg, tz)
    keys = await queries.resolve_series(conn, device, metric)
    if bucket is None:
        found = await queries.raw(conn, keys, start, end, limit=limits.max_points)
        if found is None:
            raise too_many(
                limits.max_points + 1, len(keys), limits.max_points,
                "ask for buckets (`bucket=1m`...), a shorter time range or fewer series",
            )  # fmt: skip
    else:
        points = queries.estimate_points(len(keys), req)
        if points > limits.max_points:
            raise too_many(
                points, len(keys), limits.max_points,
                "shorten the time range, use a wider bucket or ask for fewer series",
            )  # fmt: skip
        found = await queries.bucketed(conn, keys, req)
    return _response(req, found, raw=bucket is None)


def _response(
    req: queries.SeriesRequest, found: list[queries.Series], *, raw: bool
) -> SeriesResponse:
    z = ZoneInfo(req.tz)
    return SeriesResponse(
        start=req.start.astimezone(z),
        end=req.end.astimezone(z),
        bucket=None if raw else req.bucket,  # type: ignore[arg-type]
        agg=None if raw else req.agg,  # type: ignore[arg-type]
        tz=req.tz,
        series=[
            SeriesData(
                device_id=s.key.device_id,
                metric=s.key.metric_name,
                unit=s.key.unit,
                source=s.source,  # type: ignore[arg-type]
                points=[Point(time=t.astimezone(z), value=v) for t, v in s.points],
            )
            for s in found
        ],
    )
