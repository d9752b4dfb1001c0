"""Why input was dead-lettered: stable codes, stored in ``dead_letters.reason``."""

from __future__ import annotations

import enum


class Reason(enum.StrEnum):
    # a whole message
    PAYLOAD_TOO_LARGE = "payload_too_large"
    MALFORMED = "malformed"
    """Not JSON (or not MessagePack on .../telemetry/msgpack)."""
    INVALID_MESSAGE = "invalid_message"
    """Decodes, but does not have the contract's shape (missing field, wrong type...)."""
    GATEWAY_MISMATCH = "gateway_mismatch"
    TOO_MANY_READINGS = "too_many_readings"
    INVALID_TOPIC = "invalid_topic"
    INVALID_STATUS = "invalid_status"
    RETAINED = "retained"
    """Telemetry published with the retain flag: the broker would replay it forever."""
    CONFLICTING_DUPLICATE = "conflicting_duplicate"
    """The message's identity (gateway, seq) is stored with other content."""
    DEAD_LETTERS_CAPPED = "dead_letters_capped"
    """One row counting, by reason, the refusals of a message beyond the per-message cap."""
    STORAGE_REJECTED = "storage_rejected"
    """The database refused a message that passed validation (reported, not retried)."""
    # one reading of a message
    INVALID_READING = "invalid_reading"
    DEVICE_NOT_OF_GATEWAY = "device_not_of_gateway"
    """A reading or announcement of a device that another gateway owns."""
    UNKNOWN_DEVICE = "unknown_device"
    """A reading of a device never registered, with ``CITYTEL_UNKNOWN_DEVICES=refuse``."""
    TOO_MANY_METRICS = "too_many_metrics"
    TIME_TOO_EARLY = "time_too_early"
    TIME_IN_FUTURE = "time_in_future"
    SENT_AT_OUT_OF_RANGE = "sent_at_out_of_range"
    """The message's ``sent_at`` is implausible: stored without it."""
    # one value of a reading
    UNKNOWN_METRIC = "unknown_metric"
    METRIC_NOT_OF_KIND = "metric_not_of_kind"
    NOT_FINITE = "not_finite"
    OUT_OF_RANGE = "out_of_range"
    # one device of an announcement
    UNKNOWN_KIND = "unknown_kind"
    INVALID_DEVICE = "invalid_device"
