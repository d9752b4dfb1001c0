"""deploy/helm/citytel: the committed manifests are the templates' for the default values,
and Kubernetes' own schemas (as kubernetes-validate ships them) accept every one."""

from __future__ import annotations

import copy
from typing import Any

import kubernetes_validate
import pytest

from citytel.settings import Settings
from tests.deploy.helm_render import RENDERED, default_values, manifests, render

KUBERNETES = "1.30.0"


def _by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def test_the_committed_manifests_are_the_default_values_rendered() -> None:
    assert RENDERED.read_text() == render(), (
        "regenerate: python -m tests.deploy.helm_render > deploy/helm/citytel/rendered/default.yaml"
    )


def test_other_values_change_the_manifests() -> None:
    values = default_values()
    values["ingester"]["instances"] = ["x", "y", "z"]
    values["config"]["CITYTEL_RETENTION"] = "yes"
    docs = manifests(render(values, release="city"))
    names = [d["metadata"]["name"] for d in _by_kind(docs, "Deployment")]
    assert names == ["city-api", "city-ingest-x", "city-ingest-y", "city-ingest-z"]
    (config,) = _by_kind(docs, "ConfigMap")
    assert config["data"]["CITYTEL_RETENTION"] == "yes"


def test_every_manifest_passes_the_kubernetes_schemas_strictly() -> None:
    docs = manifests(RENDERED.read_text())
    assert len(docs) >= 5
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)
    wrong = copy.deepcopy(_by_kind(docs, "Deployment")[0])
    wrong["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGett"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong, KUBERNETES, strict=True)


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return doc["spec"]["template"]["spec"]["containers"]  # type: ignore[no-any-return]


def test_ingesters_share_a_group_with_a_session_each_and_all_are_probed() -> None:
    docs = manifests(RENDERED.read_text())
    deployments = _by_kind(docs, "Deployment")
    ingesters = [d for d in deployments if _containers(d)[0]["args"] == ["ingest"]]
    assert len(ingesters) == 2
    envs = [{e["name"]: e["value"] for e in _containers(d)[0]["env"]} for d in ingesters]
    assert len({e["CITYTEL_CLIENT_ID"] for e in envs}) == 2
    assert {e["CITYTEL_SHARE_GROUP"] for e in envs} == {"ingest"}
    for d in ingesters:
        assert d["spec"]["replicas"] == 1 and d["spec"]["strategy"]["type"] == "Recreate"
    stop_s = Settings().stop_timeout_s
    for d in deployments:
        (container,) = _containers(d)
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        port = container["readinessProbe"]["httpGet"]["port"]
        assert port in {p["name"] for p in container["ports"]}
        secret = [e["secretRef"]["name"] for e in container["envFrom"] if "secretRef" in e]
        assert secret == [default_values()["existingSecret"]]
        assert d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > stop_s
