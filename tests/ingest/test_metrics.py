"""The ingester's own metrics (prometheus-client), read at scrape time."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from citytel.health import health_app
from citytel.local import LocalMosquitto
from devices.contract import topic
from ingest.config import Broker
from ingest.metrics import exposition, registry_of
from tests.helpers import T0_MS, delivered, make_ingester, publish, reading, telemetry, wait_until


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_the_ingesters_counters_reach_prometheus(
    database_url: str, mosquitto: LocalMosquitto, topic_prefix: str
) -> None:
    p = topic_prefix
    messages = [
        (
            topic("gw-m", "telemetry", prefix=p),
            telemetry("gw-m", s, [reading("m", T0_MS + s, power_w=1)]),
        )
        for s in range(1, 6)
    ]
    messages.append((topic("gw-m", "telemetry", prefix=p), b"not json"))
    async with make_ingester(database_url, mosquitto, p, "metrics", batch_max_wait_s=0.05) as ing:
        await publish(mosquitto, messages)
        await wait_until(lambda: delivered(ing, len(messages)))
        registry = registry_of(ing)
        app = health_app(
            running=lambda: True,
            database_url=database_url,
            broker=Broker(port=mosquitto.port),
            metrics=lambda: exposition(registry),
            session=lambda: {
                "connected": int(ing.session.connected),
                "session_takeovers": ing.session.takeovers,
                "sessions_lost": ing.session.sessions_lost,
            },
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
            r = await client.get("/metrics")
            ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ok",
        "connected": 1,
        "session_takeovers": 0,
        "sessions_lost": 0,
    }
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    got = _samples(r.text)
    assert got[("citytel_ingester_messages_total", ())] == 5
    assert got[("citytel_ingester_values_total", ())] == 5
    assert got[("citytel_ingester_dead_letters_total", (("reason", "malformed"),))] == 1
    assert got[("citytel_ingester_connected", ())] == 1
    assert got[("citytel_ingester_held_messages", ())] == 0
    assert got[("citytel_ingester_commit_seconds_count", ())] >= 1
