"""The MQTT alert channel: notifications published at QoS 1 on
``city/v1/alerts/{severity}/{kind}`` of a real Mosquitto."""

from __future__ import annotations

import asyncio
import json
import uuid

import aiomqtt

from citytel.alerts import AlertDispatcher
from citytel.local import LocalMosquitto
from tests.alerts.conftest import _open, _outbox, _setup
from tests.helpers import query, wait_until


async def test_alerts_on_the_mqtt_topic(url: str, mosquitto: LocalMosquitto) -> None:
    prefix = f"alerts-{uuid.uuid4().hex[:6]}/"
    await _setup(url, f"mqtt://127.0.0.1:{mosquitto.port}/{prefix}", detector="test_mqtt")
    async with aiomqtt.Client("127.0.0.1", mosquitto.port) as sub:
        await sub.subscribe(f"{prefix}city/v1/alerts/#", qos=1)
        async with AlertDispatcher(database_url=url, poll_s=0.05):
            await _open(url, "sl-2", "test_mqtt", 0.99)
            message = await asyncio.wait_for(anext(aiter(sub.messages)), timeout=10)

            async def delivered() -> bool:
                return bool((await _outbox(url))[0][2])

            await wait_until(delivered)
    assert str(message.topic) == f"{prefix}city/v1/alerts/high/streetlight"
    assert message.qos == 1
    body = json.loads(bytes(message.payload))  # type: ignore[arg-type]
    ((key,),) = await query(url, "SELECT idempotency_key FROM alert_outbox")
    assert body["device"] == "sl-2" and body["idempotency_key"] == key
