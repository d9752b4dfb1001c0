"""Response and request models of the API (the OpenAPI schemas, with examples)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
)

Kind = Annotated[
    str,
    Field(
        pattern=r"^[a-z][a-z0-9_]{0,62}$",
        description="A kind of the catalog in force (`GET /v1/catalog`)",
        examples=["streetlight"],
    ),
]
GatewayStatus = Literal["online", "offline", "unknown"]
Severity = Literal["low", "medium", "high"]
Bucket = Literal["1m", "5m", "15m", "1h", "1d"]
Agg = Literal["avg", "min", "max", "sum", "count", "first", "last", "p95"]
Role = Literal["reader", "admin"]
Lifecycle = Literal["open", "acknowledged", "resolved"]
DeviceState = Literal["ok", "low", "medium", "high", "offline", "decommissioned"]

_RFC3339 = re.compile(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)")


def _rfc3339(value: object) -> object:
    # pydantic would take "0.5" as a Unix time; the API takes RFC 3339 with an offset only
    if isinstance(value, str) and not _RFC3339.fullmatch(value):
        raise ValueError("not an RFC 3339 time with an offset, e.g. 2026-03-08T00:00:00-06:00")
    return value


_EARLIEST, _LATEST = datetime(1000, 1, 1, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC)


def _in_range(t: datetime) -> datetime:
    # far enough from years 1 and 9999 that converting to any time zone cannot overflow
    if not _EARLIEST <= t <= _LATEST:
        raise ValueError("times are between the years 1000 and 9000")
    return t


Rfc3339 = Annotated[AwareDatetime, BeforeValidator(_rfc3339), AfterValidator(_in_range)]
"""An RFC 3339 time with an offset, as a query parameter."""


def _example(example: dict[str, Any]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": [example]})


class Device(BaseModel):
    model_config = _example(
        {
            "device_id": "sl-0001",
            "kind": "streetlight",
            "gateway": "gw-01",
            "status": "online",
            "latitude": 41.88,
            "longitude": -87.63,
            "announced": True,
            "attributes": {},
        }
    )
    device_id: str
    kind: Kind | None = Field(description="None until the device is announced")
    gateway: str | None
    status: GatewayStatus = Field(description="Its gateway's status: devices reach us through it")
    latitude: float | None
    longitude: float | None
    announced: bool
    attributes: dict[str, Any]


class DevicePage(BaseModel):
    items: list[Device]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: last")


class MetricState(BaseModel):
    name: str
    unit: str
    last_seen: AwareDatetime
    last_value: float


class DeviceDetail(Device):
    metrics: list[MetricState] = Field(description="Each metric the device has values of")
    last_seen: AwareDatetime | None


class LatestValue(BaseModel):
    model_config = _example(
        {
            "device_id": "env-0003",
            "metric": "no2_ppb",
            "unit": "ppb",
            "time": "2026-11-22T14:05:00Z",
            "value": 21.4,
        }
    )
    device_id: str
    metric: str
    unit: str
    time: AwareDatetime
    value: float


class Latest(BaseModel):
    items: list[LatestValue]


class Point(BaseModel):
    time: AwareDatetime = Field(description="A value's time, or its bucket's start")
    value: float


class SeriesData(BaseModel):
    device_id: str
    metric: str
    unit: str
    source: Literal["raw", "rollups", "rollups+raw"] = Field(
        description="Where the answer came from: the ingester's rollups, raw readings, or both"
    )
    points: list[Point]


class SeriesResponse(BaseModel):
    model_config = _example(
        {
            "start": "2026-03-07T00:00:00-06:00",
            "end": "2026-03-10T00:00:00-05:00",
            "bucket": "1d",
            "agg": "avg",
            "tz": "America/Chicago",
            "series": [
                {
                    "device_id": "env-0003",
                    "metric": "no2_ppb",
                    "unit": "ppb",
                    "source": "rollups",
                    "points": [
                        {"time": "2026-03-07T00:00:00-06:00", "value": 18.2},
                        {"time": "2026-03-08T00:00:00-06:00", "value": 16.9},
                        {"time": "2026-03-09T00:00:00-05:00", "value": 22.5},
                    ],
                }
            ],
        }
    )
    start: AwareDatetime
    end: AwareDatetime
    bucket: Bucket | None = Field(description="null: raw values")
    agg: Agg | None
    tz: str
    series: list[SeriesData]


class Episode(BaseModel):
    """An anomaly episode: one detector's finding on one series, device or gateway, from
    the value that opened it to the one that ended it (the routes keep the name
    `/v1/anomalies`, which is what operators search for)."""

    model_config = _example(
        {
            "id": 17,
            "device_id": "sl-0042",
            "gateway": "gw-01",
            "kind": "streetlight",
            "metric": None,
            "detector": "lamp_out",
            "started_at": "2026-11-22T02:10:00Z",
            "ended_at": None,
            "open": True,
            "peak_score": 1.0,
            "severity": "high",
            "observed": 0.4,
            "lifecycle": "acknowledged",
            "acked_at": "2026-11-22T02:14:00Z",
            "acked_by": "night desk (ctk_3xQ9ab)",
            "ack_comment": "crew sent",
        }
    )
    id: int
    device_id: str | None = Field(description="null for an episode of a whole gateway (silent)")
    gateway: str | None = Field(description="the device's gateway, or the silent gateway")
    kind: Kind | None
    metric: str | None = Field(description="null for rules about a whole device or gateway")
    detector: str
    started_at: AwareDatetime
    ended_at: AwareDatetime | None
    open: bool
    peak_score: float
    severity: Severity
    observed: float | None
    expected: float | None = Field(
        default=None, description="What the detector expected (null: not recorded)"
    )
    lifecycle: Lifecycle = Field(description="open, then acknowledged, then resolved")
    acked_at: AwareDatetime | None = None
    acked_by: str | None = Field(default=None, description="The acknowledging key's name")
    ack_comment: str | None = None
    resolved_at: AwareDatetime | None = None
    resolved_by: str | None = None
    resolve_comment: str | None = None


class EpisodeAction(BaseModel):
    """The body of an acknowledgement or a resolution."""

    model_config = _example({"comment": "crew sent, ticket 4411"})
    comment: str = Field(default="", max_length=2000)


class EpisodePage(BaseModel):
    items: list[Episode]
    next_cursor: str | None


class Gateway(BaseModel):
    model_config = _example(
        {
            "gateway_id": "gw-01",
            "status": "online",
            "status_at": "2026-11-22T00:00:03Z",
            "last_seen": "2026-11-22T14:05:01Z",
            "last_seq": 81234,
            "devices": 14,
            "messages_total": 81230,
            "lookback_s": 3600,
            "messages": 360,
            "message_rate": 0.1,
            "lost_messages": 2,
            "refused_messages": 1,
        }
    )
    gateway_id: str
    status: GatewayStatus
    status_at: AwareDatetime | None
    last_seen: AwareDatetime | None
    last_seq: int | None
    devices: int
    messages_total: int
    lookback_s: int = Field(description="The look-back, in seconds, the figures below are over")
    messages: int = Field(description="Telemetry messages committed in the look-back")
    message_rate: float = Field(description="messages/s over the look-back")
    lost_messages: int = Field(
        description="seqs missing between those committed in the look-back, within one epoch"
    )
    seq_epochs: int = Field(
        description="counting epochs in the look-back: a seq jump above the epoch gap (a"
        " gateway restart, docs/contract.md) starts one and is not counted as lost"
    )
    refused_messages: int = Field(
        description="messages of the gateway refused whole in the look-back (dead letters)"
    )


class Gateways(BaseModel):
    items: list[Gateway]


class NewApiKey(BaseModel):
    role: Role
    name: str = Field(default="", max_length=200)


class ApiKey(BaseModel):
    id: int
    prefix: str = Field(description="The key's first characters, to tell keys apart")
    role: Role
    name: str
    created_at: AwareDatetime
    revoked_at: AwareDatetime | None


class CreatedApiKey(BaseModel):
    id: int
    key: str = Field(description="The secret: shown this once, stored only as a digest")
    role: Role
    name: str
    created_at: datetime


class ApiKeys(BaseModel):
    items: list[ApiKey]


class SignIn(BaseModel):
    key: str = Field(min_length=1, max_length=200, description="An API key")


class SessionInfo(BaseModel):
    model_config = _example(
        {"role": "reader", "name": "night desk (ctk_3xQ9ab)", "csrf_token": "q8Vn..."}
    )
    role: Role
    name: str = Field(description="The key's name and prefix, as acknowledgements show it")
    csrf_token: str | None = Field(
        description="Echo in `X-CSRF-Token` on POSTs made with the session cookie"
    )


class MapData(BaseModel):
    """Every device matching the filters, as parallel arrays (compact for 300,000 devices)."""

    model_config = _example(
        {
            "count": 2,
            "kinds": ["streetlight", "environment", "traffic"],
            "gateways": ["gw-01"],
            "states": ["ok", "low", "medium", "high", "offline", "decommissioned"],
            "device_id": ["sl-0001", "env-0003"],
            "lon": [-87.63, -87.61],
            "lat": [41.88, 41.9],
            "kind": [0, 1],
            "gateway": [0, 0],
            "state": [0, 5],
        }
    )
    count: int
    kinds: list[str] = Field(description="Names that the `kind` codes index")
    gateways: list[str | None] = Field(description="Gateway ids that the `gateway` codes index")
    states: list[DeviceState] = Field(description="Names that the `state` codes index")
    device_id: list[str] = Field(description="Empty unless asked for (`ids=true`)")
    lon: list[float]
    lat: list[float]
    kind: list[int] = Field(description="Index into `kinds`; -1: not announced")
    gateway: list[int] = Field(description="Index into `gateways`")
    state: list[int] = Field(
        description="Index into `states`: an open anomaly's severity, else the gateway's status"
    )


AlertChange = Literal["opened", "ended", "acknowledged", "resolved"]


class NewAlertEndpoint(BaseModel):
    model_config = _example({"url": "https://ops.example/hooks/citytel", "name": "night desk"})
    url: str = Field(
        pattern=r"^((https?|mqtt)://|mailto:)",
        max_length=2000,
        description="A webhook; mqtt://host:port/prefix/ for the MQTT alert topic;"
        " mailto:ADDRESS for e-mail through the configured SMTP server",
    )
    name: str = Field(default="", max_length=200)


class AlertEndpoint(BaseModel):
    id: int
    name: str
    url: str
    enabled: bool
    created_at: AwareDatetime


class CreatedAlertEndpoint(AlertEndpoint):
    secret: str = Field(description="The signing secret: shown this once")


class AlertEndpoints(BaseModel):
    items: list[AlertEndpoint]


class NewAlertRule(BaseModel):
    """Which episode changes notify an endpoint; a field left out matches anything."""

    model_config = _example(
        {"endpoint": 1, "kind": "streetlight", "min_severity": "high", "changes": ["opened"]}
    )
    endpoint: int = Field(ge=1, le=2**31 - 1)
    kind: Kind | None = None
    metric: str | None = Field(default=None, max_length=100)
    detector: str | None = Field(default=None, max_length=100)
    min_severity: Severity | None = Field(default=None, description="This severity or worse")
    gateway: str | None = Field(default=None, max_length=200)
    bbox: list[float] | None = Field(
        default=None,
        min_length=4,
        max_length=4,
        description="minLon, minLat, maxLon, maxLat of the device",
    )
    changes: list[AlertChange] = Field(default=["opened"], min_length=1)


class AlertRule(NewAlertRule):
    id: int


class AlertRules(BaseModel):
    items: list[AlertRule]


class OutboxItem(BaseModel):
    id: int
    endpoint: int
    episode: int
    change: AlertChange
    idempotency_key: str
    state: Literal["pending", "delivered", "failed"]
    attempts: int
    created_at: AwareDatetime
    next_attempt_at: AwareDatetime
    delivered_at: AwareDatetime | None
    failed_at: AwareDatetime | None
    last_error: str | None


class Outbox(BaseModel):
    items: list[OutboxItem]
