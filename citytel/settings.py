"""The one place configuration is read: environment variables ``CITYTEL_*`` and ``.env``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic_settings import BaseSettings, SettingsConfigDict

from citytel.errors import ConfigurationError
from ingest.limits import Limits
from ingest.mqtt import Broker


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
    api_max_points: int = 20_000
    """Points (values or buckets) per JSON response of the API; exports are not capped."""
    api_statement_timeout_ms: int = 5_000
    """Statement timeout on the API's database connections."""
    api_pool_timeout_s: float = 5.0

    health_host: str = "127.0.0.1"
    health_port: int = 0
    """Where ``citytel ingest`` serves /healthz and /readyz (0: nowhere)."""

    client_id: str = "citytel-ingest"
    share_group: str | None = None
    """Set to share the load among ingesters (MQTT 5 ``$share/<group>/...``)."""
    topic_prefix: str = ""
    batch_max_messages: int = 5_000
    batch_max_wait_s: float = 0.1
    receive_maximum: int = 20_000
    session_expiry_s: int = 7 * 86_400
    detect: bool = True
    """Run the anomaly detectors in the ingester (off: values and rollups only)."""
    stop_timeout_s: float = 30.0
    """After SIGTERM/SIGINT, how long the parts may take to stop in order before what is
    still stopping is abandoned (messages in hand stay unacknowledged: the broker resends)."""
    timezone: str = "UTC"
    """The city's time zone (IANA name): the hours of the detectors' daily baselines."""

    max_payload_bytes: int = 1 << 20
    max_readings_per_message: int = 10_000
    max_metrics_per_reading: int = 64
    future_tolerance_s: float = 300.0

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

    log_level: str = "INFO"

    def limits(self) -> Limits:
        return Limits(
            max_payload_bytes=self.max_payload_bytes,
            max_readings_per_message=self.max_readings_per_message,
            max_metrics_per_reading=self.max_metrics_per_reading,
            future_tolerance_s=self.future_tolerance_s,
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
