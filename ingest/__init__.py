"""The MQTT ingester: deliveries in, committed rows and dead letters out.

The names below load lazily, so that importing ``ingest.config`` (settings do) does not
load gmqtt, NumPy and Numba with the ingester.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ingest.batch import BatchBuilder
    from ingest.config import Broker, IngesterConfig
    from ingest.decode import Decoder, Rejection
    from ingest.ingester import Ingester
    from ingest.limits import Limits
    from ingest.mqtt import Delivery, Subscription
    from ingest.reasons import Reason
    from ingest.stats import IngestStats

_WHERE = {
    "BatchBuilder": "ingest.batch",
    "Broker": "ingest.config",
    "Decoder": "ingest.decode",
    "Delivery": "ingest.mqtt",
    "IngestStats": "ingest.stats",
    "Ingester": "ingest.ingester",
    "IngesterConfig": "ingest.config",
    "Limits": "ingest.limits",
    "Reason": "ingest.reasons",
    "Rejection": "ingest.decode",
    "Subscription": "ingest.mqtt",
}
__all__ = [
    "BatchBuilder",
    "Broker",
    "Decoder",
    "Delivery",
    "IngestStats",
    "Ingester",
    "IngesterConfig",
    "Limits",
    "Reason",
    "Rejection",
    "Subscription",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'ingest' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
