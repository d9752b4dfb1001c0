"""Bad input is data: whatever a gateway sends, every value is kept or dead-lettered."""

from __future__ import annotations

import math
import random

import msgspec
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from citytel.local import LocalMosquitto
from devices.catalog import METRICS
from devices.contract import topic
from ingest.batch import BatchBuilder
from ingest.config import Broker
from ingest.decode import Decoder
from ingest.limits import Limits
from ingest.mqtt import Subscription
from ingest.reasons import Reason
from tests.helpers import T0_MS, make_ingester, publish, query, reading, telemetry, wait_until

NOW_MS = 1_763_762_999_000
LIMITS = Limits()

metric_names = st.sampled_from([m.name for m in METRICS]) | st.text(min_size=1, max_size=12)
values = (
    st.floats(allow_nan=True, allow_infinity=True)
    | st.integers(-(2**63), 2**63 - 1)
    | st.sampled_from([0.0, -1.0, 1e308, -1e308, 5e-324])
)
timestamps = (
    st.integers(-(2**63), 2**64 - 1)
    | st.integers(NOW_MS - 10**10, NOW_MS + 10**9)
    | st.datetimes(timezones=st.just(__import__("datetime").UTC))
)
readings = st.fixed_dictionaries(
    {
        "device_id": st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True),
        "ts": timestamps,
        "metrics": st.dictionaries(metric_names, values, max_size=70),
    }
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(readings, max_size=6), min_size=1, max_size=4), st.booleans())
def test_every_value_is_stored_or_dead_lettered(
    messages: list[list[dict[str, object]]], binary: bool
) -> None:
    builder = BatchBuilder(Decoder(limits=LIMITS), LIMITS)
    channel = "telemetry/msgpack" if binary else "telemetry"
    encode = msgspec.msgpack.encode if binary else msgspec.json.encode
    sent = 0
    for seq, rs in enumerate(messages):
        try:
            payload = encode({"gateway_id": "gw-1", "seq": seq, "readings": rs})
        except (OverflowError, TypeError, msgspec.EncodeError):
            continue  # not representable in this encoding: nothing was sent
        builder.add(f"city/v1/gateways/gw-1/{channel}", payload, NOW_MS * 1000)
        sent += sum(len(r["metrics"]) for r in rs)  # type: ignore[arg-type]
    batch = builder.finish()
    devices = np.arange(1, len(batch.r_device) + 1, dtype=np.int32)
    cols = batch.columns({"gw-1": 1}, devices, np.zeros(len(devices) + 1, np.int8), NOW_MS * 1000)
    assert np.isfinite(cols.values.value).all()
    per_reading = {
        Reason.TOO_MANY_METRICS,
        Reason.TIME_TOO_EARLY,
        Reason.TIME_IN_FUTURE,
        Reason.INVALID_READING,
    }
    rejected = 0
    for d in cols.dead_letters:
        assert d.reason and d.detail
        part = (
            msgspec.json.decode(d.payload)
            if d.reason != Reason.INVALID_READING or not binary
            else msgspec.msgpack.decode(d.payload)
        )
        rejected += len(part["metrics"]) if d.reason in per_reading else 1
    assert len(cols.values) + rejected == sent


def test_a_million_readings_in_one_message_is_refused_before_decoding() -> None:
    one = b'{"device_id":"d","ts":1,"metrics":{"power_w":1}},'
    payload = b'{"gateway_id":"gw-1","seq":1,"readings":[' + one * 1_000_000 + b"{}]}"
    message, rejections = Decoder(limits=LIMITS).telemetry("gw-1", payload)
    assert message is None and rejections[0].reason is Reason.PAYLOAD_TOO_LARGE
    assert len(rejections[0].payload) == LIMITS.dead_letter_payload_bytes  # kept, truncated


def test_too_many_readings_within_the_payload_limit() -> None:
    one = b'{"device_id":"d","ts":1,"metrics":{}},'
    payload = (
        b'{"gateway_id":"gw-1","seq":1,"readings":['
        + one * 20_000
        + b'{"device_id":"d","ts":1,"metrics":{}}]}'
    )
    assert len(payload) < LIMITS.max_payload_bytes
    message, rejections = Decoder(limits=LIMITS).telemetry("gw-1", payload)
    assert message is None and rejections[0].reason is Reason.TOO_MANY_READINGS


async def test_an_invalid_utf8_topic_becomes_an_invalid_topic_dead_letter() -> None:
    subscription = Subscription(broker=Broker(), client_id="t", topics=[])
    subscription._receive(b"city/v1/gateways/\xff/telemetry", b"{}", 1, 1)  # as gmqtt hands it
    (delivery,) = subscription.take()
    builder = BatchBuilder(Decoder(limits=LIMITS), LIMITS)
    builder.add(delivery.topic, delivery.payload, delivery.received_us)
    assert [d.reason for d in builder.finish().dead_letters] == [Reason.INVALID_TOPIC]
    assert not math.isnan(delivery.received_us)


async def test_the_ingester_stays_up_through_garbage_and_keeps_the_valid_messages(
    database_url: str, mosquitto: LocalMosquitto, topic_prefix: str
) -> None:
    rng = random.Random(3)
    garbage = [bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 300))) for _ in range(100)]
    channels = ["telemetry", "telemetry/msgpack", "devices", "status"]
    messages = [
        (topic("gw-g", channels[i % 4], prefix=topic_prefix), g) for i, g in enumerate(garbage)
    ]
    valid = [
        (
            topic("gw-g", "telemetry", prefix=topic_prefix),
            telemetry("gw-g", seq, [reading("sl-g", T0_MS + seq, power_w=1.0)]),
        )
        for seq in range(10)
    ]
    ingester = make_ingester(
        database_url, mosquitto, topic_prefix, "garbage", batch_max_wait_s=0.05
    )
    async with ingester:
        await publish(mosquitto, messages + valid)

        async def all_in() -> bool:
            return ingester.stats.deliveries >= len(messages) + len(valid)

        await wait_until(all_in)
    assert await query(database_url, "SELECT count(*) FROM metric_values") == [(10,)]
    letters = await query(database_url, "SELECT count(*), count(DISTINCT reason) FROM dead_letters")
    assert letters[0][0] == 100 == sum(ingester.stats.dead_letters.values())
