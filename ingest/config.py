"""The ingester's configuration: where the broker is, and every knob with its default.

Defaults are written here once; ``citytel.settings.Settings`` reads its own defaults
from these classes. This module imports nothing heavy (no gmqtt, NumPy or Numba), so
the settings of ``citytel api`` do not load the ingester.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import Literal

from ingest.limits import Limits


@dataclass(frozen=True, slots=True)
class Broker:
    """Where the MQTT broker is and how to log in."""

    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: str | None = None
    """CA certificate(s) to verify the broker with; the system's when None."""

    def ssl_context(self) -> ssl.SSLContext | bool:
        return ssl.create_default_context(cafile=self.ca_file) if self.tls else False


@dataclass(frozen=True, slots=True)
class IngesterConfig:
    """How one ingester runs (settings ``CITYTEL_<FIELD>``)."""

    client_id: str = "citytel-ingest"
    share_group: str | None = None
    """Set to share the load among ingesters (MQTT 5 ``$share/<group>/...``)."""
    topic_prefix: str = ""
    limits: Limits = field(default_factory=Limits)
    batch_max_messages: int = 5_000
    batch_max_wait_s: float = 0.1
    receive_maximum: int = 20_000
    max_held_bytes: int = 256 << 20
    """Payload bytes held unacknowledged; above it the ingester stops reading from the
    broker until commits free room (the broker queues the rest)."""
    session_expiry_s: int = 7 * 86_400
    retry_max_s: float = 10.0
    """Longest wait between two attempts to write a batch while the database is down."""
    max_attempts: int = 5
    """Failures of one batch, with the database answering, before it counts as refused."""
    shutdown_grace_s: float = 10.0
    rollup_widths_s: tuple[int, ...] = (60, 900, 3600)
    allowed_lateness_s: float = 300.0
    unknown_devices: Literal["claim", "refuse"] = "claim"
    """A device never registered: the first gateway that reports it claims it, or its
    readings are refused (``unknown_device``)."""
    formats: tuple[str, ...] = ()
    """Other vendors' formats to read besides contract v1: chirpstack, tts, sparkplug,
    senml (docs/contract.md)."""
    format_mapping: str | None = None
    """A TOML file mapping those formats' fields to catalog metrics (docs/contract.md)."""
    sparkplug_host_id: str = "citytel"
    """The Sparkplug host application id whose STATE the ingester publishes."""
    detect: bool = True
    timezone: str = "UTC"
    """The city's time zone (IANA name): the hours of the detectors' daily baselines."""
    dropout_check_s: float = 10.0
    catalog_poll_s: float = 2.0
    """How often the ingester looks for a newer catalog version (one index lookup)."""
    checkpoint_s: float = 60.0
