from __future__ import annotations

from pathlib import Path

import pytest

from citytel.settings import Settings, broker_from_url
from citytel.supervisor import local_servers
from devices.errors import ConfigurationError


def test_configured_servers_are_used_and_none_is_started(tmp_path: Path) -> None:
    settings = Settings(
        database_url="postgresql://db.example/citytel",
        mqtt_url="mqtt://mq.example:1884",
        var_dir=tmp_path / "var",
    )
    with local_servers(settings) as ends:
        assert ends.database_url == "postgresql://db.example/citytel"
        assert ends.mqtt_url == "mqtt://mq.example:1884"
    assert not (tmp_path / "var").exists()


def test_mqtt_urls() -> None:
    b = broker_from_url("mqtts://gw%2F7:s3cret@mq.example")
    assert (b.host, b.port, b.username, b.password, b.tls) == (
        "mq.example",
        8883,
        "gw/7",
        "s3cret",
        True,
    )
    assert broker_from_url("mqtt://127.0.0.1").port == 1883
    with pytest.raises(ConfigurationError):
        broker_from_url("http://127.0.0.1")


def test_settings_come_from_citytel_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYTEL_MAX_PAYLOAD_BYTES", "2048")
    monkeypatch.setenv("CITYTEL_SHARE_GROUP", "ingest")
    settings = Settings()
    assert settings.limits().max_payload_bytes == 2048
    assert settings.share_group == "ingest"
