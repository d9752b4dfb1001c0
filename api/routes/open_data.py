"""Open data without a key: public metrics, aggregated per grid cell and whole bucket.

What leaves, exactly (docs/api.md "Open data"): only metrics the catalog in force marks
``public``; only whole buckets of at least 15 minutes that have ended; per grid cell of
the kind's ``grid_deg``, never per device and without device ids; for kinds that
``count_people``, hourly totals only, withheld below ``k``. Every answer names its
licence and links its DCAT dataset description.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from api.deps import Conn
from api.problems import NOT_FOUND, TOO_MANY_POINTS, VALIDATION, ProblemError, response
from api.routes.series import End, Start
from devices.catalog import Catalog, Metric
from storage.catalog import load_catalog
from storage.queries.open_data import Cell, OpenSeriesRequest, open_cells, open_series

router = APIRouter(
    prefix="/open/v1",
    tags=["open data"],
    responses=response(NOT_FOUND, VALIDATION, TOO_MANY_POINTS),
)

OpenBucket = Literal["15m", "1h", "1d"]
_WIDTH: dict[str, int | None] = {"15m": 900, "1h": 3600, "1d": None}
_ISO = {"15m": "PT15M", "1h": "PT1H", "1d": "P1D"}
PEOPLE_BUCKET = "1h"
"""The one bucket of kinds that count people: with two widths, a withheld count would be
the difference between a wide bucket and the published narrow ones."""
MAX_BUCKETS = 3_000
_M_PER_DEG = 111_320  # metres per degree of latitude
LD_JSON = "application/ld+json"
CSV = "text/csv; charset=utf-8"
GEOJSON = "application/geo+json"


@dataclass(frozen=True, slots=True)
class OpenDataPolicy:
    """What the open-data routes publish and under which terms."""

    k: int = 5
    """Counts of kinds that count people below ``k`` are withheld."""
    license: str = "https://creativecommons.org/licenses/by/4.0/"
    publisher: str = "citytel"
    timezone: str = "UTC"
    """The zone of ``1d`` buckets (local days)."""


def _policy(request: Request) -> OpenDataPolicy:
    policy: OpenDataPolicy = request.app.state.open_data
    return policy


def statistic(catalog: Catalog, m: Metric) -> str:
    """What a cell's value is: ``increase`` (counters), ``total`` (other counts of people)
    or ``mean``."""
    if m.counter:
        return "increase"
    return "total" if catalog.kind_specs[m.kind].counts_people else "mean"


async def _public(conn: Any, name: str) -> tuple[Catalog, Metric]:
    catalog = await load_catalog(conn)
    m = catalog.by_name.get(name)
    if m is None or not m.public:
        raise ProblemError(NOT_FOUND, f"no public metric {name!r}: see /open/v1/datasets")
    return catalog, m


def _dataset(
    request: Request, policy: OpenDataPolicy, catalog: Catalog, m: Metric
) -> dict[str, Any]:
    base = str(request.base_url).rstrip("/") + "/open/v1"
    kind = catalog.kind_specs[m.kind]
    people = kind.counts_people
    stat = statistic(catalog, m)
    described: dict[str, Any] = {
        "@id": f"{base}/datasets/{m.name}",
        "@type": "dcat:Dataset",
        "dct:identifier": m.name,
        "dct:title": f"{m.description} ({m.name}), {kind.id}",
        "dct:description": (
            f"The {stat} of {m.name} [{m.unit}] per grid cell of {kind.grid_deg}° and bucket;"
            " no device ids, no raw readings"
            + (f"; totals below {policy.k} withheld" if people else "")
        ),
        "dct:license": policy.license,
        "dct:publisher": {"@type": "foaf:Agent", "foaf:name": policy.publisher},
        "dcat:keyword": [kind.id, kind.fiware, m.fiware],
        "citytel:fiware": m.fiware,
        "dcat:temporalResolution": _ISO[PEOPLE_BUCKET] if people else _ISO["15m"],
        "dcat:spatialResolutionInMeters": round(kind.grid_deg * _M_PER_DEG),
        "citytel:unit": m.unit,
        "citytel:unitCode": m.unit_code,
        "citytel:statistic": stat,
        "citytel:buckets": [PEOPLE_BUCKET] if people else list(_WIDTH),
        "dcat:distribution": [
            {
                "@type": "dcat:Distribution",
                "dcat:accessURL": f"{base}/series/{m.name}.{ext}",
                "dcat:mediaType": media.split(";")[0],
                "dct:license": policy.license,
            }
            for ext, media in (("csv", CSV), ("geojson", GEOJSON))
        ],
    }
    if people:
        described["citytel:suppressedBelow"] = policy.k
    return described


_CONTEXT = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "citytel": "urn:citytel:",  # our own terms, described in docs/api.md
}


@router.get("/datasets", response_class=JSONResponse, responses={200: {"content": {LD_JSON: {}}}})
async def datasets(request: Request, conn: Conn) -> JSONResponse:
    """A DCAT catalog (JSON-LD) of the open datasets: one per public metric."""
    policy, catalog = _policy(request), await load_catalog(conn)
    body = {
        "@context": _CONTEXT,
        "@type": "dcat:Catalog",
        "dct:title": "citytel open data",
        "dct:license": policy.license,
        "dct:publisher": {"@type": "foaf:Agent", "foaf:name": policy.publisher},
        "dcat:dataset": [_dataset(request, policy, catalog, m) for m in catalog.public_metrics()],
    }
    return JSONResponse(body, media_type=LD_JSON)


MetricPath = Annotated[str, Path(description="A public metric's name", max_length=64)]


@router.get(
    "/datasets/{metric}", response_class=JSONResponse, responses={200: {"content": {LD_JSON: {}}}}
)
async def dataset(request: Request, conn: Conn, metric: MetricPath) -> JSONResponse:
    """The DCAT dataset description (JSON-LD) of one public metric."""
    catalog, m = await _public(conn, metric)
    body = {"@context": _CONTEXT} | _dataset(request, _policy(request), catalog, m)
    return JSONResponse(body, media_type=LD_JSON)


def previous_bucket(first: datetime, bucket: str) -> datetime:
    """The start of the bucket before the one starting at ``first``."""
    width = _WIDTH[bucket]
    if width is None:
        day = first.date() - timedelta(days=1)
        return datetime.combine(day, datetime.min.time(), first.tzinfo)
    return first - timedelta(seconds=width)


def whole_buckets(
    start: datetime, end: datetime, bucket: str, tz: str, now: datetime
) -> tuple[datetime, datetime, int]:
    """``[start, end)`` widened to whole buckets, cut at the last bucket that has ended;
    and the number of buckets. A bucket is published whole or not at all, so that moving
    ``from`` or ``to`` or asking again later cannot single out a few readings."""
    width = _WIDTH[bucket]
    end = min(end, now)
    if width is None:
        zone = ZoneInfo(tz)
        first = datetime.combine(start.astimezone(zone).date(), datetime.min.time(), zone)
        last = datetime.combine(end.astimezone(zone).date(), datetime.min.time(), zone)
        return first, last, max(0, (last.date() - first.date()).days)
    s = math.floor(start.timestamp() / width) * width
    e = math.floor(end.timestamp() / width) * width
    return (
        datetime.fromtimestamp(s, UTC),
        datetime.fromtimestamp(max(s, e), UTC),
        max(0, e - s) // width,
    )


_Row = tuple[str, float, float, int, float | None, bool]
"""(time, latitude, longitude, devices, value, withheld)."""


@dataclass(frozen=True, slots=True)
class _Answer:
    catalog: Catalog
    metric: Metric
    stat: str
    cells: list[_Row]


async def _answer(
    request: Request, conn: Any, metric: str, start: datetime, end: datetime, bucket: str
) -> _Answer:
    policy = _policy(request)
    catalog, m = await _public(conn, metric)
    kind = catalog.kind_specs[m.kind]
    if kind.counts_people and bucket != PEOPLE_BUCKET:
        raise ProblemError(VALIDATION, f"bucket: {m.kind} counts people; its open data is"
                           f" published in {PEOPLE_BUCKET} buckets only")  # fmt: skip
    if end <= start:
        raise ProblemError(VALIDATION, "`to` must be after `from`")
    first, last, n = whole_buckets(start, end, bucket, policy.timezone, datetime.now(UTC))
    if n > MAX_BUCKETS:
        raise ProblemError(TOO_MANY_POINTS, f"{n} buckets; at most {MAX_BUCKETS} per request:"
                           " shorten the time range or use a wider bucket",
                           points=n, max_points=MAX_BUCKETS)  # fmt: skip
    since = previous_bucket(first, bucket)
    req = OpenSeriesRequest(
        m.id, m.kind, kind.grid_deg, first, last, since, _WIDTH[bucket], policy.timezone
    )
    limit: int = request.app.state.limits.max_points
    found = await open_series(conn, req, limit=limit) if n else []
    if found is None:
        raise ProblemError(TOO_MANY_POINTS, f"more than {limit} cells x buckets: shorten the"
                           " time range or use a wider bucket",
                           points=limit + 1, max_points=limit)  # fmt: skip
    stat = statistic(catalog, m)
    zone = ZoneInfo(policy.timezone)
    k = policy.k if kind.counts_people else None
    rows = [_row(c, stat, k, zone) for c in found]
    # a cell whose devices have no earlier value has no increase: left out
    return _Answer(catalog, m, stat, [r for r in rows if r[4] is not None or r[5]])


def _row(c: Cell, stat: str, k: int | None, zone: ZoneInfo) -> _Row:
    value = {"mean": c.mean, "total": c.total, "increase": c.increase}[stat]
    withheld = k is not None and value is not None and value < k
    shown = None if withheld else value
    return c.time.astimezone(zone).isoformat(), c.latitude, c.longitude, c.devices, shown, withheld


def _links(request: Request, metric: str) -> dict[str, str]:
    base = str(request.base_url).rstrip("/")
    return {
        "Link": f'<{_policy(request).license}>; rel="license",'
        f' <{base}/open/v1/datasets/{metric}>; rel="describedby"; type="{LD_JSON}"'
    }


OpenBucketQ = Annotated[OpenBucket, Query(description="15m, 1h or 1d (local days); people: 1h")]


@router.get(
    "/series/{metric}.csv", response_class=Response, responses={200: {"content": {CSV: {}}}}
)
async def series_csv(
    request: Request, conn: Conn, metric: MetricPath, start: Start, end: End,
    bucket: OpenBucketQ = "1h",
) -> Response:  # fmt: skip
    """A public metric per grid cell and whole bucket, as CSV; licence in the ``Link`` header."""
    a = await _answer(request, conn, metric, start, end, bucket)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["time", "latitude", "longitude", "devices", a.stat, "withheld"])
    for t, lat, lon, devices, value, withheld in a.cells:
        writer.writerow([t, lat, lon, devices, "" if value is None else value, withheld])
    headers = _links(request, metric) | {
        "Content-Disposition": f'attachment; filename="{metric}.csv"'
    }
    return Response(out.getvalue(), media_type=CSV, headers=headers)


@router.get(
    "/series/{metric}.geojson",
    response_class=JSONResponse,
    responses={200: {"content": {GEOJSON: {}}}},
)
async def series_geojson(
    request: Request, conn: Conn, metric: MetricPath, start: Start, end: End,
    bucket: OpenBucketQ = "1h",
) -> JSONResponse:  # fmt: skip
    """A public metric per grid cell and whole bucket, as a GeoJSON FeatureCollection."""
    a = await _answer(request, conn, metric, start, end, bucket)
    features = [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
         "properties": {"time": t, "devices": devices, a.stat: value, "withheld": withheld}}
        for t, lat, lon, devices, value, withheld in a.cells
    ]  # fmt: skip
    body = {
        "type": "FeatureCollection",
        "license": _policy(request).license,
        "dataset": f"{str(request.base_url).rstrip('/')}/open/v1/datasets/{metric}",
        "metric": a.metric.name,
        "unit": a.metric.unit,
        "bucket": bucket,
        "features": features,
    }
    return JSONResponse(body, media_type=GEOJSON, headers=_links(request, metric))


@router.get(
    "/devices.geojson", response_class=JSONResponse, responses={200: {"content": {GEOJSON: {}}}}
)
async def devices_geojson(request: Request, conn: Conn) -> JSONResponse:
    """How many devices of each kind stand in each grid cell (no device ids)."""
    catalog = await load_catalog(conn)
    grids = {k.id: k.grid_deg for k in catalog.document.kinds}
    features = [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
         "properties": {"kind": kind, "devices": n}}
        for kind, lat, lon, n in await open_cells(conn, grids)
    ]  # fmt: skip
    body = {"type": "FeatureCollection", "license": _policy(request).license, "features": features}
    return JSONResponse(body, media_type=GEOJSON)
