"""API keys: 401 without a valid one, 403 for a reader on an admin route, open health."""

from __future__ import annotations

import httpx
import pytest

from citytel.cli import main
from tests.api.conftest import City, api_client

PROBLEM = "application/problem+json"


async def test_without_a_key_every_protected_route_is_401_as_a_problem(
    anonymous: httpx.AsyncClient,
) -> None:
    for path in ("/v1/devices", "/v1/series", "/v1/anomalies", "/metrics", "/v1/apikeys"):
        r = await anonymous.get(path)
        assert r.status_code == 401, path
        assert r.headers["content-type"] == PROBLEM
        assert r.headers["www-authenticate"] == "Bearer"
        body = r.json()
        assert body["type"] == "/problems/unauthorized" and body["status"] == 401
        assert body["instance"] == path


async def test_an_unknown_key_is_401(anonymous: httpx.AsyncClient) -> None:
    r = await anonymous.get("/v1/devices", headers={"Authorization": "Bearer ctk_nonsense"})
    assert r.status_code == 401
    assert r.json()["detail"] == "unknown or revoked API key"


async def test_health_and_problem_types_are_open(anonymous: httpx.AsyncClient) -> None:
    assert (await anonymous.get("/healthz")).json() == {"status": "ok"}
    assert (await anonymous.get("/readyz")).json() == {"status": "ok"}
    r = await anonymous.get("/problems/too-many-points")
    assert r.status_code == 200 and r.json()["status"] == 400
    r = await anonymous.get("/problems/no-such-thing")
    assert r.status_code == 404 and r.json()["type"] == "/problems/not-found"


async def test_a_reader_gets_403_on_admin_routes(reader: httpx.AsyncClient) -> None:
    assert (await reader.get("/v1/devices")).status_code == 200
    for method, path in (
        ("GET", "/v1/apikeys"),
        ("POST", "/v1/apikeys"),
        ("DELETE", "/v1/apikeys/1"),
    ):
        r = await reader.request(method, path, json={"role": "reader"})
        assert r.status_code == 403, path
        assert r.json()["type"] == "/problems/forbidden"


async def test_an_admin_creates_lists_and_revokes_keys(
    admin: httpx.AsyncClient, city: City
) -> None:
    r = await admin.post("/v1/apikeys", json={"role": "reader", "name": "dashboard"})
    assert r.status_code == 201
    made = r.json()
    assert made["key"].startswith("ctk_") and made["role"] == "reader"
    listed = (await admin.get("/v1/apikeys")).json()["items"]
    mine = next(k for k in listed if k["id"] == made["id"])
    assert mine["prefix"] == made["key"][:10] and "key" not in mine
    async with api_client(city.url, made["key"]) as client:
        assert (await client.get("/v1/devices")).status_code == 200
        assert (await admin.delete(f"/v1/apikeys/{made['id']}")).status_code == 204
        assert (await client.get("/v1/devices")).status_code == 401
    again = await admin.delete(f"/v1/apikeys/{made['id']}")
    assert again.status_code == 404 and again.headers["content-type"] == PROBLEM
    bad = await admin.post("/v1/apikeys", json={"role": "superuser"})
    assert bad.status_code == 422 and bad.json()["type"] == "/problems/validation"


async def test_citytel_apikey_create_prints_a_working_key(
    city: City, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CITYTEL_DATABASE_URL", city.url)
    import asyncio

    # main() runs its own event loop: run it in a thread, away from the test's loop
    code = await asyncio.to_thread(main, ["apikey", "create", "--role", "admin", "--name", "ops"])
    assert code == 0
    key = capsys.readouterr().out.strip()
    async with api_client(city.url, key) as client:
        r = await client.get("/v1/apikeys")
        assert r.status_code == 200
        assert any(k["name"] == "ops" and k["role"] == "admin" for k in r.json()["items"])
