"""The alert outbox: written with the episode change, delivered signed, retried with
backoff through failures and timeouts, kept when it finally fails."""

from __future__ import annotations

import json
from typing import Any

from citytel.alerts import AlertDispatcher, Backoff, send_test, verify
from storage.database import connect
from storage.episodes import EpisodeChange, write_episodes
from tests.alerts.conftest import Receiver, _open, _outbox, _setup, receiving
from tests.api.conftest import NIGHT, api_client, new_key
from tests.helpers import query, wait_until


async def test_written_with_the_episode_or_not_at_all(url: str) -> None:
    await _setup(url, "http://127.0.0.1:9/hook", kind="streetlight", min_severity="high")
    await _open(url, "sl-2", "rolled_back", 0.99, commit=False)
    assert await _outbox(url) == []
    assert await query(url, "SELECT 1 FROM episodes WHERE detector = 'rolled_back'") == []
    await _open(url, "sl-2", "test_rule", 0.85)  # medium: below the rule's severity
    await _open(url, "env-1", "test_rule", 0.99)  # not a streetlight
    assert await _outbox(url) == []
    await _open(url, "sl-2", "test_high", 0.99)
    ((change, attempts, done, failed, error, payload),) = await _outbox(url)
    assert (change, attempts, done, failed, error) == ("opened", 0, False, False, None)
    assert payload["device"] == "sl-2" and payload["severity"] == "high"
    assert payload["detector"] == "test_high" and payload["gateway"] == "gw-n"


async def test_delivered_signed_through_an_error_and_a_timeout(url: str) -> None:
    async with receiving([500, "hang"]) as receiver:
        endpoint = await _setup(url, receiver.url, detector="test_retry")
        backoff = Backoff(first_s=0.05, factor=2, attempts=5)
        async with AlertDispatcher(database_url=url, backoff=backoff, timeout_s=0.5, poll_s=0.05):
            await _open(url, "sl-2", "test_retry", 0.9)

            async def delivered() -> bool:
                return bool(
                    await query(url, "SELECT 1 FROM alert_outbox WHERE delivered_at IS NOT NULL")
                )

            await wait_until(delivered, within_s=15)
        assert len(receiver.requests) == 3  # 500, no answer, then 200
        keys = {h["idempotency-key"] for h, _ in receiver.requests}
        assert len(keys) == 1  # the same key every attempt
        for headers, body in receiver.requests:
            assert verify(endpoint["secret"], body, headers["x-citytel-signature"])
            assert not verify("another secret", body, headers["x-citytel-signature"])
            assert json.loads(body)["detector"] == "test_retry"
        ((change, attempts, done, failed, error, _),) = await _outbox(url)
        assert (change, attempts, done, failed, error) == ("opened", 3, True, False, None)


async def test_a_failed_notification_is_kept_and_listed(url: str) -> None:
    async with receiving([500, 503]) as receiver:
        await _setup(url, receiver.url, detector="test_fail")
        backoff = Backoff(first_s=0.05, factor=2, attempts=2)
        async with AlertDispatcher(database_url=url, backoff=backoff, timeout_s=0.5, poll_s=0.05):
            await _open(url, "sl-2", "test_fail", 0.9)

            async def given_up() -> bool:
                return bool(
                    await query(url, "SELECT 1 FROM alert_outbox WHERE failed_at IS NOT NULL")
                )

            await wait_until(given_up, within_s=15)
        assert len(receiver.requests) == 2
    ((_, attempts, done, failed, error, _),) = await _outbox(url)
    assert (attempts, done, failed, error) == (2, False, True, "HTTP 503")
    async with api_client(url, await new_key(url, "admin")) as admin:
        listed = (await admin.get("/v1/alerts/outbox", params={"state": "failed"})).json()
        assert [(i["change"], i["attempts"], i["last_error"]) for i in listed["items"]] == [
            ("opened", 2, "HTTP 503")
        ]
        assert (await admin.get("/v1/alerts/outbox", params={"state": "pending"})).json() == {
            "items": []
        }


async def test_lifecycle_changes_notify_once_each(url: str) -> None:
    await _setup(
        url, "http://127.0.0.1:9/hook", detector="lamp_out", changes=["acknowledged", "resolved"]
    )
    async with api_client(url, await new_key(url, "admin")) as admin:
        (lamp,) = (await admin.get("/v1/anomalies", params={"detector": "lamp_out"})).json()[
            "items"
        ]
        for _ in range(2):  # a second press changes nothing, so notifies nothing
            r = await admin.post(f"/v1/anomalies/{lamp['id']}/ack", json={})
            assert r.status_code == 200, r.text
        await admin.post(f"/v1/anomalies/{lamp['id']}/resolve", json={"comment": "done"})
    changes = [row[0] for row in await _outbox(url)]
    assert changes == ["acknowledged", "resolved"]
    keys = await query(url, "SELECT idempotency_key FROM alert_outbox")
    assert len({k for (k,) in keys}) == 2


async def test_rules_through_the_api(url: str) -> None:
    async with api_client(url, await new_key(url, "admin")) as admin:
        r = await admin.post("/v1/alerts/endpoints", json={"url": "https://ops.example/h"})
        assert r.status_code == 201 and r.json()["secret"].startswith("whsec_")
        endpoint = r.json()["id"]
        listed = (await admin.get("/v1/alerts/endpoints")).json()["items"]
        assert [e["url"] for e in listed] == ["https://ops.example/h"] and "secret" not in listed[0]
        rule = {"endpoint": endpoint, "kind": "traffic", "bbox": [-88, 41, -87, 42]}
        r = await admin.post("/v1/alerts/rules", json=rule)
        assert r.status_code == 201 and r.json()["bbox"] == [-88, 41, -87, 42]
        bad = await admin.post("/v1/alerts/rules", json={**rule, "endpoint": 999})
        assert bad.status_code == 404
        await _open(url, "tr-1", "test_area", 0.9)  # tr-1 is at -87.70, 41.60
        assert [row[0] for row in await _outbox(url)] == ["opened"]
        rule_id = r.json()["id"]
        assert (await admin.delete(f"/v1/alerts/rules/{rule_id}")).status_code == 204
        assert (await admin.get("/v1/alerts/rules")).json() == {"items": []}
    async with api_client(url, await new_key(url, "reader")) as reader:
        assert (await reader.get("/v1/alerts/outbox")).status_code == 403


async def test_a_signed_test_notification() -> None:
    async with receiving([]) as receiver:
        assert await send_test(receiver.url, secret="s3cret") is None
        ((headers, body),) = receiver.requests
        assert verify("s3cret", body, headers["x-citytel-signature"])
    assert await send_test(receiver.url, secret="s3cret", timeout_s=0.5) is not None  # closed


async def test_a_dispatcher_that_dies_mid_delivery_loses_nothing(url: str) -> None:
    """The first dispatcher is stopped while its POST waits for an answer (it never marks
    the notification); the next one delivers it again after the claim's lease, with the
    same idempotency key, and it is delivered once."""
    async with receiving(["hang"]) as receiver:
        await _setup(url, receiver.url, detector="test_crash")
        options: dict[str, Any] = {"database_url": url, "poll_s": 0.05, "lease_s": 0.5}
        async with AlertDispatcher(timeout_s=30, **options):
            await _open(url, "sl-2", "test_crash", 0.9)
            await wait_until(lambda: _got(receiver, 1))
        ((_, attempts, done, _, _, _),) = await _outbox(url)
        assert (attempts, done) == (0, False)  # claimed, never completed
        async with AlertDispatcher(timeout_s=5, **options):

            async def delivered() -> bool:
                return (await _outbox(url))[0][2] is True

            await wait_until(delivered, within_s=15)
        (first, _), (second, _) = receiver.requests
        assert first["idempotency-key"] == second["idempotency-key"]
        ((_, attempts, done, _, _, _),) = await _outbox(url)
        assert (attempts, done) == (1, True)


async def _got(receiver: Receiver, n: int) -> bool:
    return len(receiver.requests) >= n


async def test_an_episode_ended_by_the_writer_notifies_once(url: str) -> None:
    await _setup(url, "http://127.0.0.1:9/hook", detector="test_end", changes=["opened", "ended"])
    await _open(url, "sl-2", "test_end", 0.9)
    ((dev,),) = await query(url, "SELECT id FROM devices WHERE device_id = 'sl-2'")
    start_us = int(NIGHT.timestamp() * 1e6) + 10**11
    close = EpisodeChange(dev, None, "test_end", False, start_us, start_us + 10**8, 0.9, 1.0)
    conn = await connect(url)
    try:
        await write_episodes(conn, [close])
        await write_episodes(conn, [close])  # a replay after a restart closes nothing more
    finally:
        await conn.close()
    assert [row[0] for row in await _outbox(url)] == ["opened", "ended"]
    ((payload,),) = await query(url, "SELECT payload FROM alert_outbox WHERE change = 'ended'")
    assert payload["ended_at"] is not None
