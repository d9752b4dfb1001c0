"""The one place configuration is read: environment variables ``CITYTEL_*`` and ``.env``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic_settings import BaseSettings, SettingsConfigDict

from api.config import Limits as ApiLimits
from devices.errors import ConfigurationError
from ingest.config import Broker, IngesterConfig
from ingest.limits import Limits

_I, _L, _A = IngesterConfig(), Limits(), ApiLimits()  # the defaults, written once there


class Settings(BaseSettings):
    """citytel's settings; every field is ``CITYTEL_<FIELD>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="CITYTEL_", env_file=".env", extra="ignore")

    database_url: str | None = None
    """PostgreSQL to use; unset: ``citytel up`` starts one under ``var_dir``."""
    mqtt_url: str | None = None
    """Broker to use (mqtt://user:pass@host:port, mqtts:// for TLS); unset: start one."""
    mqtt_ca_file: str | None = None
    """CA certificate to verify an mqtts:// broker with (the system's CAs when unset)."""
    var_dir: Path = Path("var")
    local_pg_port: int = 0
    """Port of the local PostgreSQL (0: a free one)."""
    local_mqtt_port: int = 0
    """Port of the local Mosquitto (0: a free one)."""
    timescaledb: Literal["auto", "on", "off"] = "auto"

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_max_points: int = _A.max_points
    """Points (values or buckets) per JSON response of the API; exports are not capped."""
    api_statement_timeout_ms: int = _A.statement_timeout_ms
    """Statement timeout on the API's database connections."""
    api_pool_timeout_s: float = _A.pool_timeout_s
    seq_epoch_gap: int = _A.seq_epoch_gap
    """A gateway's seq jump above this is a restart (a new epoch), not lost messages."""
    open_data_k: int = 5
    """Open data withholds counts below k of kinds that count people (docs/api.md)."""
    open_data_license: str = "https://creativecommons.org/licenses/by/4.0/"
    """The licence (a URI) every open-data answer names."""
    open_data_publisher: str = "citytel"

    health_host: str = "127.0.0.1"
    health_port: int = 0
    """Where ``citytel ingest`` serves /healthz and /readyz (0: nowhere)."""
    stop_timeout_s: float = 30.0
    """After SIGTERM/SIGINT, how long the parts may take to stop in order before what is
    still stopping is abandoned (messages in hand stay unacknowledged: the broker resends)."""

    client_id: str = _I.client_id
    share_group: str | None = _I.share_group
    """Set to share the load among ingesters (MQTT 5 ``$share/<group>/...``)."""
    topic_prefix: str = _I.topic_prefix
    batch_max_messages: int = _I.batch_max_messages
    batch_max_wait_s: float = _I.batch_max_wait_s
    receive_maximum: int = _I.receive_maximum
    max_held_bytes: int = _I.max_held_bytes
    """Payload bytes the ingester holds unacknowledged before it stops reading."""
    session_expiry_s: int = _I.session_expiry_s
    max_attempts: int = _I.max_attempts
    """Failures of one batch, with the database answering, before it is refused."""
    allowed_lateness_s: float = _I.allowed_lateness_s
    formats: str = ""
    """Other vendors' formats to read, comma-separated: chirpstack,tts,sparkplug,senml."""
    format_mapping: str | None = _I.format_mapping
    """A TOML file mapping those formats' fields to catalog metrics (docs/contract.md)."""
    detect: bool = _I.detect
    unknown_devices: Literal["claim", "refuse"] = _I.unknown_devices
    """A device never registered: claimed by the first gateway that reports it, or refused."""
    timezone: str = _I.timezone
    """The city's time zone (IANA name): daily baselines, and the API's default zone."""

    max_payload_bytes: int = _L.max_payload_bytes
    max_readings_per_message: int = _L.max_readings_per_message
    max_metrics_per_reading: int = _L.max_metrics_per_reading
    future_tolerance_s: float = _L.future_tolerance_s
    max_dead_letters_per_message: int = _L.max_dead_letters_per_message

    sim_streetlights: int = 30
    sim_environment: int = 6
    sim_traffic: int = 6
    sim_gateways: int = 3
    sim_interval_s: float = 10.0
    sim_seed: int = 1
    sim_fault_rate: float = 0.0
    """Faults per device per day and per gateway per day. 0 for ``citytel up``: a
    healthy demo city unless asked (then the ground truth goes to ``sim_ground_truth``)."""
    sim_ground_truth: Path | None = None
    """Where ``citytel up`` writes injected faults; unset: ``var_dir``/ground-truth.jsonl."""

    alerts: bool = True
    """``citytel up`` delivers the alert outbox (webhooks, MQTT, e-mail: docs/alerts.md)."""
    smtp_host: str | None = None
    """The SMTP server for ``mailto:`` alert endpoints (unset: those deliveries fail, kept)."""
    smtp_port: int = 25
    smtp_sender: str = "citytel@localhost"
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False

    log_level: str = "INFO"

    def limits(self) -> Limits:
        """The ingester's input limits."""
        return Limits(
            max_payload_bytes=self.max_payload_bytes,
            max_readings_per_message=self.max_readings_per_message,
            max_metrics_per_reading=self.max_metrics_per_reading,
            future_tolerance_s=self.future_tolerance_s,
            max_dead_letters_per_message=self.max_dead_letters_per_message,
        )

    def ingester_config(self) -> IngesterConfig:
        """The ingester's configuration."""
        return IngesterConfig(
            client_id=self.client_id,
            share_group=self.share_group,
            topic_prefix=self.topic_prefix,
            limits=self.limits(),
            batch_max_messages=self.batch_max_messages,
            batch_max_wait_s=self.batch_max_wait_s,
            receive_maximum=self.receive_maximum,
            max_held_bytes=self.max_held_bytes,
            session_expiry_s=self.session_expiry_s,
            max_attempts=self.max_attempts,
            allowed_lateness_s=self.allowed_lateness_s,
            detect=self.detect,
            formats=tuple(f.strip() for f in self.formats.split(",") if f.strip()),
            format_mapping=self.format_mapping,
            unknown_devices=self.unknown_devices,
            timezone=self.timezone,
            # a third of the stop's time for the batch in hand; then it is left
            # unacknowledged and the windows and the checkpoint still fit in the rest
            shutdown_grace_s=self.stop_timeout_s / 3,
        )

    def api_limits(self) -> ApiLimits:
        """What one API request may cost."""
        return ApiLimits(
            max_points=self.api_max_points,
            statement_timeout_ms=self.api_statement_timeout_ms,
            pool_timeout_s=self.api_pool_timeout_s,
            seq_epoch_gap=self.seq_epoch_gap,
        )


def broker_from_url(url: str, *, ca_file: str | None = None) -> Broker:
    """``mqtt://[user[:password]@]host[:port]`` (``mqtts://`` for TLS) as a ``Broker``."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ConfigurationError(f"not an MQTT URL (mqtt://host:port): {url!r}")
    tls = parts.scheme == "mqtts"
    return Broker(
        host=parts.hostname,
        port=parts.port or (8883 if tls else 1883),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        tls=tls,
        ca_file=ca_file,
    )
