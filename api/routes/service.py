"""``/metrics`` in the Prometheus text format, from figures the database holds.

The ingester may run in another process (or several): its in-memory counters are out
of reach, so the figures are read from what it committed: messages, dead letters,
episodes and gateways. Rates are over the last minute.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse

from api.deps import Conn, get_role
from api.routes.common import PROTECTED
from storage import queries

router = APIRouter(tags=["service"], dependencies=[Depends(get_role)], responses=PROTECTED)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _metric(
    name: str,
    kind: str,
    help_: str,
    samples: dict[str, float | None] | float | None,
    label: str = "",
) -> Iterator[str]:
    yield f"# HELP {name} {help_}"
    yield f"# TYPE {name} {kind}"
    if isinstance(samples, dict):
        for key, value in sorted(samples.items()):
            if value is not None:
                yield f'{name}{{{label}="{_escape(key)}"}} {value}'
    elif samples is not None:
        yield f"{name} {samples}"


def render(f: queries.ServiceFigures) -> str:
    w = f.lookback_s
    lines = [
        *_metric("citytel_ingest_messages_per_second", "gauge",
                 "Telemetry messages committed per second over the last minute", f.messages / w),
        *_metric("citytel_ingest_values_per_second", "gauge",
                 "Values committed per second over the last minute", f.values / w),
        *_metric("citytel_ingest_messages_total", "counter",
                 "Telemetry messages committed, all time", f.messages_total),
        *_metric("citytel_ingest_lag_seconds", "gauge",
                 "Publish-to-commit lag of messages committed in the last minute",
                 {"0.5": f.lag_p50_s, "0.99": f.lag_p99_s}, "quantile"),
        *_metric("citytel_ingest_seconds_since_last_commit", "gauge",
                 "Seconds since the newest committed message (within a day)",
                 f.since_last_commit_s),
        *_metric("citytel_ingest_batches", "gauge",
                 "Batches (transactions) committed in the last minute", f.batches),
        *_metric("citytel_ingest_batch_messages", "gauge",
                 "Messages per batch in the last minute",
                 {"mean": f.batch_mean, "max": f.batch_max}, "stat"),
        *_metric("citytel_dead_letters_total", "counter", "Dead letters by reason",
                 dict(f.dead_letters), "reason"),
        *_metric("citytel_episodes_opened_total", "counter",
                 "Anomaly episodes opened, by detector", dict(f.episodes_opened), "detector"),
        *_metric("citytel_episodes_open", "gauge", "Anomaly episodes open now, by detector",
                 dict(f.episodes_open), "detector"),
        *_metric("citytel_gateways", "gauge", "Gateways by status", dict(f.gateways), "status"),
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}}}},
)
async def metrics(conn: Conn, request: Request) -> PlainTextResponse:
    """Ingest rates, lag, batch sizes, dead letters by reason, anomalies opened; and, when
    the ingester runs in the same process (``citytel up``), the ingester's own metrics.

    The database's figures are computed at most every ``_CACHE_S`` seconds, so scrapes
    from several Prometheus servers cost one query."""
    state = request.app.state
    cached: tuple[float, str] | None = getattr(state, "metrics_cache", None)
    now = time.monotonic()
    if cached is None or now - cached[0] > _CACHE_S:
        cached = (now, render(await queries.service_figures(conn)))
        state.metrics_cache = cached
    text = cached[1]
    process = getattr(state, "process_metrics", None)
    if process is not None:
        text += process().decode()
    return PlainTextResponse(text, media_type=CONTENT_TYPE)


_CACHE_S = 10.0
