"""deploy/compose.yaml, deploy/Dockerfile and deploy/prometheus, checked without Docker."""

from __future__ import annotations

import importlib.resources
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from citytel.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def _compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())  # type: ignore[no-any-return]


def _spec_errors(doc: dict[str, Any]) -> list[str]:
    """What the Compose Specification's JSON schema (as check-jsonschema ships it) rejects."""
    vendored = importlib.resources.files("check_jsonschema.builtin_schemas") / "vendor"
    schema = json.loads((vendored / "compose-spec.json").read_text())
    validator = jsonschema.validators.validator_for(schema)
    checker = validator(schema, format_checker=validator.FORMAT_CHECKER)
    return [e.message for e in checker.iter_errors(doc)]


def test_the_compose_file_follows_the_compose_specification() -> None:
    doc = _compose()
    assert _spec_errors(doc) == []
    doc["services"]["api"]["stop_grace_priod"] = "45s"  # a misspelt key is caught
    assert _spec_errors(doc)


def test_compose_runs_every_part_two_ingesters_sharing_the_load() -> None:
    services = _compose()["services"]
    assert {
        "mosquitto",
        "timescaledb",
        "ingest-a",
        "ingest-b",
        "api",
        "prometheus",
        "grafana",
    } <= set(services)
    ingesters = [services["ingest-a"], services["ingest-b"]]
    assert all(s["command"] == ["ingest"] for s in ingesters)
    groups = {s["environment"]["CITYTEL_SHARE_GROUP"] for s in ingesters}
    ids = {s["environment"]["CITYTEL_CLIENT_ID"] for s in ingesters}
    assert len(groups) == 1 and len(ids) == 2  # one group; a persistent session each
    assert services["api"]["command"] == ["api"]
    stop_s = Settings().stop_timeout_s
    for name in ("ingest-a", "ingest-b", "api"):
        grace = services[name]["stop_grace_period"]
        assert int(grace.rstrip("s")) > stop_s  # citytel stops by itself before Docker kills


def test_every_file_compose_mounts_is_in_the_repository_or_made_by_the_operator() -> None:
    doc = _compose()
    ignore = (DEPLOY / "compose" / ".gitignore").read_text().splitlines()
    made_by_operator = [p.rstrip("/") for p in ignore if p and not p.startswith("#")]
    operations = (ROOT / "docs" / "operations.md").read_text()
    paths = [s["file"] for s in doc["secrets"].values()]
    for service in doc["services"].values():
        paths += [v.split(":")[0] for v in service.get("volumes", []) if v.startswith(".")]
        env_file = service.get("env_file")
        paths += [env_file] if env_file else []
    assert paths
    for path in paths:
        relative = Path(path)
        if (DEPLOY / relative).exists():
            continue
        inside = (
            relative.relative_to("compose").as_posix() if relative.parts[0] == "compose" else ""
        )
        ignored = any(inside == p or inside.startswith(f"{p}/") for p in made_by_operator)
        example = (DEPLOY / relative).with_name(relative.name + ".example")
        assert ignored, f"{path}: neither in the repository nor left to the operator"
        told = f"deploy/{relative.as_posix()}" in operations  # how to make it
        assert example.exists() or told, f"{path}: no example, and not in docs/operations.md"


def test_prometheus_scrapes_the_api_with_the_key_compose_gives_it() -> None:
    doc = _compose()
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["static_configs"][0]["targets"] == ["api:8000"]
    assert "8000:8000" in doc["services"]["api"]["ports"]
    targets = [s["target"] for s in doc["services"]["prometheus"]["secrets"]]
    assert job["authorization"]["credentials_file"] in targets


def test_the_dockerfile_copies_every_package_and_runs_citytel() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = set()
    for line in text.splitlines():
        if line.startswith("COPY") and "--from" not in line:
            *sources, _ = line.split()[1:]
            for source in sources:
                assert (ROOT / source).exists(), source
                copied.add(source.rstrip("/"))
    assert packages <= copied
    assert "constraints.txt" in copied
    python = re.findall(r"^FROM python:(\d+\.\d+)", text, flags=re.MULTILINE)
    wanted = project["project"]["requires-python"].removeprefix(">=")
    assert python and all(
        tuple(map(int, v.split("."))) >= tuple(map(int, wanted.split("."))) for v in python
    )
    assert 'ENTRYPOINT ["citytel"]' in text and "STOPSIGNAL SIGTERM" in text
    assert re.search(r"^USER (?!root|0\b)", text, flags=re.MULTILINE)
