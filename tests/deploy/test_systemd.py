"""deploy/systemd: the units pass ``systemd-analyze verify`` without a warning."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

UNITS = Path(__file__).resolve().parents[2] / "deploy" / "systemd"
INSTALLED = "/opt/citytel/.venv/bin/citytel"


def _verify(tmp_path: Path, units: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Verify ``units`` (name: text), with citytel where this test runs it from."""
    citytel = str(Path(sys.executable).with_name("citytel"))
    paths = []
    for name, text in units.items():
        path = tmp_path / name
        path.write_text(text.replace(INSTALLED, citytel))
        paths.append(str(path))
    return subprocess.run(
        ["systemd-analyze", "verify", *paths], capture_output=True, text=True, timeout=60
    )


def _units() -> dict[str, str]:
    units = {}
    for path in sorted(UNITS.glob("*.service")):
        name = path.name.replace("@.", "@a.")  # a template is verified as an instance
        units[name] = path.read_text()
    return units


def test_the_units_verify_cleanly(tmp_path: Path) -> None:
    units = _units()
    assert {"citytel-api.service", "citytel-ingest@a.service", "citytel-db-upgrade.service"} <= set(
        units
    )
    done = _verify(tmp_path, units)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", done.stderr  # unknown keys are only warnings


def test_a_mistake_in_a_unit_is_reported(tmp_path: Path) -> None:
    units = _units()
    units["citytel-api.service"] = units["citytel-api.service"].replace(
        "KillMode=mixed", "KillMode=mixd"
    )
    done = _verify(tmp_path, units)
    assert "kill mode" in done.stderr


def test_the_units_stop_citytel_with_sigterm_after_its_own_stop_timeout() -> None:
    from citytel.settings import Settings

    for name, text in _units().items():
        if "ExecStart=" in text and "Type=oneshot" not in text:
            assert "KillSignal=SIGTERM" in text, name
            found = re.search(r"^TimeoutStopSec=(\d+)$", text, flags=re.MULTILINE)
            assert found and int(found[1]) > Settings().stop_timeout_s, name
