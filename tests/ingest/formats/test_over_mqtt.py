"""On a real Mosquitto: the formats' topic filters catch the vendors' topics, and a parser's
reply (the Sparkplug rebirth request) reaches the edge node's NCMD subscription."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiomqtt

from citytel.local import LocalMosquitto
from ingest.formats import Parsed
from ingest.formats.router import Router
from ingest.formats.sparkplug import REBIRTH
from ingest.formats.sparkplug_b import Payload
from tests.ingest.formats.test_sparkplug import NBIRTH, ndata, wire_metric

EXAMPLES = Path(__file__).parent / "examples"
APP = "17c82e96-be03-4f38-aef3-f83d48582d97"


def documented(prefix: str) -> list[tuple[str, bytes]]:
    return [
        (f"{prefix}application/{APP}/device/0101010101010101/event/up",
         (EXAMPLES / "chirpstack_up.json").read_bytes()),
        (f"{prefix}v3/app1@ttn/devices/dev1/up", (EXAMPLES / "tts_up.json").read_bytes()),
        (f"{prefix}spBv1.0/plant/NBIRTH/edge-1", NBIRTH),
        (f"{prefix}spBv1.0/plant/NDATA/edge-1", ndata(1, wire_metric(alias=9, double_value=1))),
        (f"{prefix}city/v1/gateways/gw-7/senml",
         (EXAMPLES / "senml_multiple_datapoints.json").read_bytes()),
    ]  # fmt: skip


async def test_subscriptions_catch_every_format_and_the_rebirth_request_is_published(
    mosquitto: LocalMosquitto, topic_prefix: str
) -> None:
    router = Router(["chirpstack", "tts", "sparkplug", "senml"], prefix=topic_prefix)
    sent = documented(topic_prefix)
    others = [(f"{topic_prefix}city/v1/gateways/gw-7/telemetry", b"{}"),
              (f"{topic_prefix}application/{APP}/device/01/event/ack", b"{}")]  # fmt: skip
    results: dict[str, Parsed] = {}
    v5 = aiomqtt.ProtocolVersion.V5
    async with (
        aiomqtt.Client("127.0.0.1", mosquitto.port, protocol=v5) as ingest,
        aiomqtt.Client("127.0.0.1", mosquitto.port, protocol=v5) as edge,
    ):
        for topic_filter in router.subscriptions():
            await ingest.subscribe(topic_filter, qos=1)
        await edge.subscribe(f"{topic_prefix}spBv1.0/plant/NCMD/edge-1", qos=1)
        for topic, payload in others + sent:
            await edge.publish(topic, payload, qos=1)

        async def consume() -> None:
            async for message in ingest.messages:
                topic = str(message.topic)
                parser = router.parser_for(topic)
                assert parser is not None, topic
                assert isinstance(message.payload, bytes)
                parsed = parser.parse(topic, message.payload, 1_764_800_000_000_000)
                results[topic] = parsed
                for reply_topic, body in parsed.replies:
                    await ingest.publish(reply_topic, body, qos=1)
                if len(results) == len(sent):
                    return

        await asyncio.wait_for(consume(), 10)
        command = await asyncio.wait_for(anext(aiter(edge.messages)), 10)
    assert set(results) == {t for t, _ in sent}  # the other two were never delivered
    readings = {t: len(p.readings) for t, p in results.items()}
    assert all(readings[t] == 1 for t, _ in sent if "NDATA" not in t)
    assert str(command.topic) == f"{topic_prefix}spBv1.0/plant/NCMD/edge-1"
    assert isinstance(command.payload, bytes)
    [metric] = Payload.FromString(command.payload).metrics
    assert (metric.name, metric.boolean_value) == (REBIRTH, True)
