"""Live fuzzing: generated messages through the real broker into a real ingester.

The books must balance: every message the broker acknowledged is stored or
dead-lettered with a reason, the ingester never exits, and a well-behaved gateway's
messages keep being stored throughout (bench/fuzz.py). The full run (100,000 messages)
is slow; the default suite runs a small one.
"""

from __future__ import annotations

import pytest

from bench.fuzz import Report, run
from citytel.local import LocalMosquitto

# Reasons a mix of this size always produces: if the generator stopped producing one of
# them, the run would be testing less than it claims to.
EXPECTED_REASONS = {
    "malformed",
    "invalid_message",
    "invalid_reading",
    "invalid_status",
    "invalid_device",
    "gateway_mismatch",
}


def _check(report: Report) -> None:
    assert report.acknowledged == report.published
    assert report.ingester_exited is False and not report.stalled
    assert report.unaccounted == []
    assert report.good_sent > 0
    assert report.good_stored == report.good_distinct == report.good_sent
    assert report.messages_stored > 0
    assert set(report.dead_letters) >= EXPECTED_REASONS


async def test_a_small_live_fuzz_balances_the_books(
    database_url: str, mosquitto: LocalMosquitto, topic_prefix: str
) -> None:
    report = await run(
        database_url=database_url,
        broker_port=mosquitto.port,
        prefix=topic_prefix,
        messages=1_000,
        seed=7,
    )
    _check(report)


@pytest.mark.slow
async def test_a_hundred_thousand_fuzzed_messages_balance_the_books(
    database_url: str, mosquitto: LocalMosquitto, topic_prefix: str
) -> None:
    report = await run(
        database_url=database_url,
        broker_port=mosquitto.port,
        prefix=topic_prefix,
        messages=100_000,
        seed=1,
    )
    _check(report)
    assert report.good_longest_gap_s < 10.0
