"""Messages the ingester once lost or choked on (issue 11's table): each is published on
its own, followed by a valid sentinel message, and must be accounted for by the
fuzzer's books."""

from __future__ import annotations

import gc
import random
import string

import pytest

from bench.fuzz import read_books
from citytel.local import LocalMosquitto
from devices.contract import topic
from tests.helpers import (
    T0_MS,
    delivered,
    make_ingester,
    publish,
    query,
    reading,
    telemetry,
    wait_until,
)


def _random_id(length: int) -> str:
    return "".join(random.Random(length).choices(string.ascii_letters, k=length))


CASES = {
    "unknown channel telemetry/json": (
        "fz-00", "telemetry/json", telemetry("fz-00", 1, [reading("fz-d1", T0_MS, power_w=1.0)])
    ),
    "unknown channel Telemetry": (
        "fz-00", "Telemetry", telemetry("fz-00", 1, [reading("fz-d1", T0_MS, power_w=1.0)])
    ),
    # (random characters: a repeated one compresses below the index's row limit)
    "status of a 9,000-character gateway id": (_random_id(9_000), "status", b"online"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
async def test_a_shape_left_out_of_the_fuzzer_is_accounted_for(
    case: str, database_url: str, mosquitto: LocalMosquitto, topic_prefix: str
) -> None:
    gateway, channel, payload = CASES[case]
    where = topic(gateway, channel, prefix=topic_prefix)
    sentinel = telemetry("fz-01", 1, [reading("fz-d2", T0_MS, power_w=2.0)])

    async def sentinel_stored() -> bool:
        return bool(
            await query(
                database_url,
                "SELECT 1 FROM messages m JOIN gateways g ON g.id = m.gateway"
                " WHERE g.gateway_id = 'fz-01'",
            )
        )

    failure = ""
    try:
        async with make_ingester(database_url, mosquitto, topic_prefix, "gaps"):
            await publish(mosquitto, [(where, payload)])
            sentinel_topic = topic("fz-01", "telemetry", prefix=topic_prefix)
            await publish(mosquitto, [(sentinel_topic, sentinel)])
            await wait_until(sentinel_stored)
    except Exception as exc:  # kept as text: the traceback would keep the ingester alive
        failure = f"{type(exc).__name__}: {exc}"
    # An ingester whose loop died leaves its connections to the garbage collector: collect
    # them here, where this test owns the ResourceWarning, not in a later test.
    gc.collect()
    assert not failure, failure
    books, _, _ = await read_books(database_url)
    assert books.why_unaccounted(where, payload, topic_prefix) is None


async def test_a_conflicting_duplicate_is_dead_lettered(
    database_url: str, mosquitto: LocalMosquitto, topic_prefix: str
) -> None:
    where = topic("fz-00", "telemetry", prefix=topic_prefix)
    first = telemetry("fz-00", 5, [reading("fz-d1", T0_MS, power_w=1.0)])
    second = telemetry("fz-00", 5, [reading("fz-d1", T0_MS, power_w=99.0)])
    ingester = make_ingester(database_url, mosquitto, topic_prefix, "dup")
    async with ingester:
        await publish(mosquitto, [(where, first)])
        await wait_until(lambda: delivered(ingester, 1))
        await publish(mosquitto, [(where, second)])
        await wait_until(lambda: delivered(ingester, 2))
    books, _, _ = await read_books(database_url)
    assert books.dead_lettered(where, second), "the second content is neither stored nor kept"
