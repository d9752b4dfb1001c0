"""Settings: defaults written once, and reading them loads no heavy module."""

from __future__ import annotations

import subprocess
import sys

from api.config import Limits as ApiLimits
from citytel.settings import Settings
from ingest.config import IngesterConfig
from ingest.limits import Limits


def test_reading_the_settings_loads_neither_the_ingester_nor_the_api() -> None:
    code = (
        "import sys, citytel.settings; "
        "print(sorted(m for m in ('numba', 'numpy', 'gmqtt', 'fastapi', 'psycopg')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_settings_defaults_are_the_components_defaults() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.ingester_config() == IngesterConfig()
    assert settings.limits() == Limits()
    assert settings.api_limits() == ApiLimits()


def test_a_setting_reaches_the_component() -> None:
    settings = Settings(_env_file=None, batch_max_messages=7, timezone="America/Chicago")  # type: ignore[call-arg]
    config = settings.ingester_config()
    assert (config.batch_max_messages, config.timezone) == (7, "America/Chicago")
