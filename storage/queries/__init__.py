"""Every query the HTTP API asks, in one place: parameterised SQL only.

Each function takes an open connection and returns plain rows (dicts) or small value
objects; the API turns them into its response models. Nothing here formats a value into
SQL text: values travel as parameters, and the only SQL composed at run time is chosen
from fixed fragments (``psycopg.sql``).
"""

from storage.queries.anomalies import (
    EpisodeFilter,
    acknowledge,
    get_anomaly,
    list_anomalies,
    resolve,
)
from storage.queries.apikeys import CreatedKey, create_key, list_keys, revoke_key, role_of
from storage.queries.devices import (
    DeviceFilter,
    device_exists,
    device_locations,
    get_device,
    latest_values,
    list_devices,
    stream_devices,
)
from storage.queries.gateways import list_gateways
from storage.queries.map import STATES, map_json
from storage.queries.series import (
    AGGS,
    BUCKETS,
    Series,
    SeriesKey,
    SeriesRequest,
    bucketed,
    estimate_points,
    raw,
    resolve_series,
    stream_bucketed,
)
from storage.queries.service import ServiceFigures, service_figures

__all__ = [
    "AGGS",
    "BUCKETS",
    "STATES",
    "CreatedKey",
    "DeviceFilter",
    "EpisodeFilter",
    "Series",
    "SeriesKey",
    "SeriesRequest",
    "ServiceFigures",
    "acknowledge",
    "bucketed",
    "create_key",
    "device_exists",
    "device_locations",
    "estimate_points",
    "get_anomaly",
    "get_device",
    "latest_values",
    "list_anomalies",
    "list_devices",
    "list_gateways",
    "list_keys",
    "map_json",
    "raw",
    "resolve",
    "resolve_series",
    "revoke_key",
    "role_of",
    "service_figures",
    "stream_bucketed",
    "stream_devices",
]
