"""GET /v1/dead-letters: admins read what was refused, a page at a time."""

from __future__ import annotations

import base64

import httpx

from tests.api.conftest import City
from tests.helpers import query


async def test_admins_page_through_the_dead_letters(
    admin: httpx.AsyncClient, reader: httpx.AsyncClient, city: City
) -> None:
    stored = await query(city.url, "SELECT id, reason, payload FROM dead_letters ORDER BY id")
    assert stored, "the city fixture dead-letters some input"
    got, after = [], 0
    while True:
        r = await admin.get("/v1/dead-letters", params={"after": after, "limit": 2})
        assert r.status_code == 200, r.text
        page = r.json()
        got += page["items"]
        if page["next_after"] is None:
            break
        after = page["next_after"]
    assert [(d["id"], d["reason"], base64.b64decode(d["payload_base64"])) for d in got] == [
        (i, reason, bytes(payload)) for i, reason, payload in stored
    ]
    reason = stored[0][1]
    r = await admin.get("/v1/dead-letters", params={"reason": reason})
    assert {d["reason"] for d in r.json()["items"]} == {reason}
    assert (await reader.get("/v1/dead-letters")).status_code == 403
