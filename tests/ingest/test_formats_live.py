"""Other vendors' formats through the real ingester: the formats' documented examples
published to a real Mosquitto are stored once, resends are duplicates, malformed ones
dead letters, and the Sparkplug rebirth request reaches the edge node."""

from __future__ import annotations

import asyncio

import aiomqtt

from citytel.local import LocalMosquitto
from tests.helpers import delivered, make_ingester, publish, query, wait_until
from tests.ingest.formats.test_over_mqtt import APP, documented

FORMATS = ("chirpstack", "tts", "sparkplug", "senml")


async def test_documented_payloads_are_stored_once_and_bad_ones_dead_lettered(
    database_url: str, mosquitto: LocalMosquitto, topic_prefix: str
) -> None:
    p = topic_prefix
    sent = documented(p)
    chirpstack_up = sent[0]
    bad = [
        (f"{p}application/{APP}/device/0101010101010101/event/up", b'{"deduplicationId": '),
        (f"{p}city/v1/gateways/gw-7/senml", b"[{]"),
    ]
    messages = [*sent, chirpstack_up, *bad]  # the uplink twice: a resend
    v5 = aiomqtt.ProtocolVersion.V5
    options = {"batch_max_wait_s": 0.05, "formats": FORMATS}
    async with (
        aiomqtt.Client("127.0.0.1", mosquitto.port, protocol=v5) as edge,
        make_ingester(database_url, mosquitto, p, "formats", **options) as ingester,
    ):
        await edge.subscribe(f"{p}spBv1.0/plant/NCMD/edge-1", qos=1)
        for n, m in enumerate(messages, 1):  # one by one: a resend after its first is stored
            await publish(mosquitto, [m])
            await wait_until(lambda n=n: delivered(ingester, n))  # type: ignore[misc]
        rebirth = await asyncio.wait_for(anext(aiomqtt_messages(edge)), 10)
        assert b"Node Control/Rebirth" in rebirth
    stored = await query(
        database_url,
        "SELECT g.gateway_id, count(*) FROM messages m JOIN gateways g ON g.id = m.gateway"
        " GROUP BY 1 ORDER BY 1",
    )
    # one message per format: ChirpStack's gateway is the application, TTS's too, a
    # Sparkplug edge node is a gateway, a SenML pack's is the topic's; the resend is not
    assert stored == [(APP, 1), ("app1", 1), ("edge-1", 1), ("gw-7", 1)]
    assert ingester.stats.duplicates == 1
    values = await query(
        database_url,
        "SELECT d.device_id, m.name, r.value FROM metric_values r JOIN devices d ON d.id = r.device"
        " JOIN metrics m ON m.id = r.metric ORDER BY 1, 2",
    )
    assert values == [
        ("0004a30b001c0530", "pressure_hpa", 1013.2),  # TTS decoded_payload
        ("0004a30b001c0530", "temperature_c", -1.5),
        ("0101010101010101", "humidity_pct", 48.0),  # ChirpStack object, DevEUI as id
        ("0101010101010101", "temperature_c", 21.5),
        ("edge-1", "temperature_c", 21.5),  # the NBIRTH's metric
        ("urn:dev:ow:10e2073a01080063", "current_a", 1.2),  # RFC 8428's example 5.1.2
        ("urn:dev:ow:10e2073a01080063", "voltage_v", 120.1),
    ]
    reasons = await query(
        database_url, "SELECT reason, detail FROM dead_letters ORDER BY reason, detail"
    )
    assert [r for r, _ in reasons] == ["malformed", "malformed", "unknown_alias", "unsupported"]
    assert reasons[3][1].startswith("Properties/Hardware Make: datatype 12")  # a string


async def aiomqtt_messages(client: aiomqtt.Client):  # type: ignore[no-untyped-def]
    async for message in client.messages:
        assert isinstance(message.payload, bytes)
        yield message.payload
