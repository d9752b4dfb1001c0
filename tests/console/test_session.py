"""Sign-in: an API key exchanged for an HttpOnly, SameSite=Strict session cookie; POSTs
made with the cookie need the session's CSRF token; sign-out and revocation end it."""

from __future__ import annotations

import httpx

from tests.api.conftest import City, api_client, new_key
from tests.helpers import query


async def _signed_in(client: httpx.AsyncClient, key: str) -> tuple[httpx.Response, str]:
    r = await client.post("/v1/session", json={"key": key})
    assert r.status_code == 200, r.text
    return r, r.json()["csrf_token"]


async def test_the_cookie_is_httponly_and_samesite_strict(city: City) -> None:
    key = await new_key(city.url, "reader")
    async with api_client(city.url, None) as client:
        r, csrf = await _signed_in(client, key)
        cookie = r.headers["set-cookie"].lower()
        assert "citytel_session=" in cookie and "httponly" in cookie
        assert "samesite=strict" in cookie and "path=/" in cookie
        assert key not in r.text and len(csrf) >= 20
        me = (await client.get("/v1/session")).json()
        assert me == {"role": "reader", "name": f"test reader ({key[:10]})", "csrf_token": csrf}
        assert (await client.get("/v1/devices")).status_code == 200  # the cookie alone
        ((stored,),) = await query(city.url, "SELECT count(*) FROM console_sessions")
        assert stored >= 1


async def test_a_post_with_the_cookie_needs_the_csrf_token(city: City) -> None:
    url = city.spare_url
    async with api_client(url, None) as client:
        _, csrf = await _signed_in(client, await new_key(url, "reader"))
        ((episode,),) = await query(url, "SELECT min(id) FROM episodes")
        path = f"/v1/anomalies/{episode}/ack"
        r = await client.post(path, json={"comment": "forged"})
        assert r.status_code == 403 and "X-CSRF-Token" in r.json()["detail"]
        r = await client.post(path, json={}, headers={"X-CSRF-Token": csrf + "x"})
        assert r.status_code == 403
        ((acked,),) = await query(url, "SELECT acked_at FROM episodes WHERE id = %s", (episode,))
        assert acked is None  # nothing changed
        r = await client.post(path, json={"comment": "real"}, headers={"X-CSRF-Token": csrf})
        assert r.status_code == 200 and r.json()["ack_comment"] == "real"


async def test_sign_out_and_revocation_end_the_session(city: City) -> None:
    url = city.spare_url
    async with api_client(url, None) as client:
        await _signed_in(client, await new_key(url, "reader"))
        r = await client.delete("/v1/session")
        assert r.status_code == 204 and "max-age=0" in r.headers["set-cookie"].lower()
        assert (await client.get("/v1/devices")).status_code == 401
        key = await new_key(url, "admin")
        await _signed_in(client, key)
        assert (await client.get("/v1/apikeys")).status_code == 200  # admins manage keys
        await query(
            url,
            "UPDATE api_keys SET revoked_at = now() WHERE prefix = %s RETURNING id",
            (key[:10],),
        )
        r = await client.get("/v1/devices")
        assert r.status_code == 401 and "sign in again" in r.json()["detail"]


async def test_a_wrong_key_opens_no_session(city: City) -> None:
    async with api_client(city.url, None) as client:
        r = await client.post("/v1/session", json={"key": "ctk_wrong"})
        assert r.status_code == 401 and "set-cookie" not in r.headers
        assert (await client.get("/v1/session")).status_code == 401
