"""The MQTT ingester: deliveries in, committed rows and dead letters out."""

from ingest.batch import BatchBuilder
from ingest.decode import Decoder, Rejection
from ingest.ingester import Ingester
from ingest.limits import Limits
from ingest.mqtt import Broker, Delivery, Subscription
from ingest.reasons import Reason
from ingest.stats import IngestStats

__all__ = [
    "BatchBuilder",
    "Broker",
    "Decoder",
    "Delivery",
    "IngestStats",
    "Ingester",
    "Limits",
    "Reason",
    "Rejection",
    "Subscription",
]
