"""``citytel catalog show|diff|apply``, run as users run it: in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg

from devices.catalog import shipped_document


def _citytel(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYTEL_")}
    env["CITYTEL_DATABASE_URL"] = database_url
    return subprocess.run(
        [sys.executable, "-m", "citytel.cli", "catalog", *args],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


FERRY = """
[[kinds]]
id = "ferry_dock"
description = "a pier"
fiware = "Device"
grid_deg = 0.01

[[metrics]]
id = 50
name = "passengers"
kind = "ferry_dock"
unit = "1"
unit_code = "C62"
low = 0
high = 5000
fiware = "Device.value"
description = "people on board"
"""


def test_show_diff_apply(database_url: str, tmp_path: Path) -> None:
    shown = _citytel(database_url, "show")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("# catalog version 1, applied ")
    assert 'name = "power_w"' in shown.stdout

    new = tmp_path / "catalog.toml"
    new.write_text(shipped_document().to_toml() + FERRY)
    diff = _citytel(database_url, "diff", str(new))
    assert (diff.returncode, diff.stdout) == (0, "+ kind ferry_dock\n+ metric 50 (passengers)\n")
    applied = _citytel(database_url, "apply", str(new))
    assert applied.returncode == 0, applied.stderr
    assert "catalog applied as version 2" in applied.stderr
    assert _citytel(database_url, "diff", str(new)).stdout == "no change\n"
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT kind FROM metrics WHERE name = 'passengers'").fetchone()
        assert row == ("ferry_dock",)

    broken = tmp_path / "broken.toml"
    broken.write_text(shipped_document().to_toml() + FERRY.replace('unit = "1"', 'unit = "%"'))
    refused = _citytel(database_url, "diff", str(broken))
    assert refused.returncode == 1
    assert "! metric 50 (passengers) changes its unit from '1' to '%'" in refused.stdout
    refused = _citytel(database_url, "apply", str(broken))
    assert refused.returncode == 1 and "catalog refused: metric 50" in refused.stderr

    invalid = tmp_path / "invalid.toml"
    invalid.write_text("format = 1\nkinds = []\n")
    done = _citytel(database_url, "apply", str(invalid))
    assert done.returncode == 1 and "invalid catalog: kinds" in done.stderr
    assert _citytel(database_url, "show").stdout.startswith("# catalog version 2,")
