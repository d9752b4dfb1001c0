"""The composition root hands the API its settings: limits and the broker to check."""

from __future__ import annotations

from citytel.settings import Settings
from citytel.supervisor import api_server


def test_api_settings_reach_the_app() -> None:
    settings = Settings(
        api_max_points=7, api_statement_timeout_ms=1234, api_pool_timeout_s=0.5, api_port=8123
    )
    server = api_server(settings, "postgresql://unused", "mqtt://127.0.0.1:18830")
    app = server.config.app
    assert app.state.limits.max_points == 7  # type: ignore[attr-defined]
    assert app.state.limits.statement_timeout_ms == 1234  # type: ignore[attr-defined]
    assert app.state.limits.pool_timeout_s == 0.5  # type: ignore[attr-defined]
    assert app.state.broker == ("127.0.0.1", 18830)  # type: ignore[attr-defined]
    assert server.config.port == 8123
    without = api_server(settings, "postgresql://unused")
    assert without.config.app.state.broker is None  # type: ignore[attr-defined]
