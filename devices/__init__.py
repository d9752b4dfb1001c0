"""The bottom floor: device kinds, the metric catalog and the gateway contract v1."""

from devices.catalog import BY_ID, BY_NAME, METRICS, Kind, Metric, metrics_of
from devices.contract import (
    Announcement,
    DeviceInfo,
    Reading,
    Telemetry,
    parse_topic,
    subscriptions,
    topic,
)

__all__ = [
    "BY_ID",
    "BY_NAME",
    "METRICS",
    "Announcement",
    "DeviceInfo",
    "Kind",
    "Metric",
    "Reading",
    "Telemetry",
    "metrics_of",
    "parse_topic",
    "subscriptions",
    "topic",
]
