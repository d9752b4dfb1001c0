"""GET /v1/catalog for readers, PUT /v1/catalog for admins, against a real database."""

from __future__ import annotations

from typing import Any

from devices.catalog import shipped_document
from tests.api.conftest import api_client, new_key

FERRY = {"id": "ferry_dock", "description": "a pier", "fiware": "Device", "grid_deg": 0.01}
PASSENGERS = {
    "id": 50, "name": "passengers", "kind": "ferry_dock", "unit": "1", "unit_code": "C62",
    "low": 0, "high": 5000, "fiware": "Device.value", "description": "people on board",
}  # fmt: skip


def _document(**metric: Any) -> dict[str, Any]:
    data = shipped_document().model_dump(mode="json")
    data["kinds"].append(FERRY)
    data["metrics"].append(PASSENGERS | metric)
    return data


async def test_readers_read_the_catalog_and_only_admins_change_it(database_url: str) -> None:
    reader, admin = await new_key(database_url, "reader"), await new_key(database_url, "admin")
    async with api_client(database_url, reader) as client:
        got = await client.get("/v1/catalog")
        assert got.status_code == 200
        body = got.json()
        assert (body["version"], body["source"]) == (1, "shipped")
        assert body["document"] == shipped_document().model_dump(mode="json")
        refused = await client.put("/v1/catalog", json=_document())
        assert refused.status_code == 403
    async with api_client(database_url, admin) as client:
        put = await client.put("/v1/catalog", json=_document())
        assert put.status_code == 200, put.text
        assert put.json() == {
            "version": 2,
            "created": True,
            "changes": ["+ kind ferry_dock", "+ metric 50 (passengers)"],
        }
        again = await client.put("/v1/catalog", json=_document())
        assert again.json() == {"version": 2, "created": False, "changes": []}
        now = (await client.get("/v1/catalog")).json()
        assert now["version"] == 2 and now["source"] == "api"
        assert now["document"]["metrics"][-1]["name"] == "passengers"
        first = (await client.get("/v1/catalog", params={"version": 1})).json()
        assert first["version"] == 1 and first["document"] == shipped_document().model_dump(
            mode="json"
        )
        assert (await client.get("/v1/catalog", params={"version": 3})).status_code == 404
        history = (await client.get("/v1/catalog/versions")).json()["items"]
        assert [(v["version"], v["source"]) for v in history] == [(2, "api"), (1, "shipped")]
        assert history[0]["digest"] != history[1]["digest"]


async def test_a_breaking_version_is_a_409_problem_with_every_reason(database_url: str) -> None:
    admin = await new_key(database_url, "admin")
    async with api_client(database_url, admin) as client:
        assert (await client.put("/v1/catalog", json=_document())).status_code == 200
        bad = await client.put("/v1/catalog", json=_document(unit="%", kind="streetlight"))
        assert bad.status_code == 409
        problem = bad.json()
        assert bad.headers["content-type"] == "application/problem+json"
        assert problem["type"] == "/problems/catalog-refused"
        assert problem["reasons"] == [
            "metric 50 (passengers) changes its kind from 'ferry_dock' to 'streetlight': an id"
            " never changes meaning; add a metric with a new id instead",
            "metric 50 (passengers) changes its unit from '1' to '%': an id never changes"
            " meaning; add a metric with a new id instead",
        ]
        assert (await client.get("/v1/catalog")).json()["version"] == 2


async def test_an_invalid_document_is_a_validation_problem(database_url: str) -> None:
    admin = await new_key(database_url, "admin")
    async with api_client(database_url, admin) as client:
        bad = await client.put("/v1/catalog", json=_document(id=1))
        assert bad.status_code == 422
        assert "two entries share the metric id 1" in bad.json()["detail"]
        assert (await client.get("/v1/catalog")).json()["version"] == 1
