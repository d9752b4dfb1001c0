"""The ingester's MQTT session: PUBACKs leave only when the ingester acks, never on receipt."""

from __future__ import annotations

from typing import Any

import pytest

from citytel.local import LocalMosquitto
from devices.errors import BrokerError
from ingest.config import Broker
from ingest.mqtt import Subscription, check_gmqtt_hook
from tests.helpers import publish, wait_until


def _session(mosquitto: LocalMosquitto, topic_prefix: str) -> Subscription:
    return Subscription(
        broker=Broker(port=mosquitto.port),
        client_id=f"acks-{topic_prefix}",
        topics=[f"{topic_prefix}acks/#"],
        wake_at=1,
    )


async def _received(session: Subscription, n: int) -> list[Any]:
    got: list[Any] = []

    async def arrived() -> bool:
        got.extend(session.take())
        return len(got) >= n

    await wait_until(arrived)
    return got


async def test_a_message_is_redelivered_until_acked_and_never_after(
    mosquitto: LocalMosquitto, topic_prefix: str
) -> None:
    async with _session(mosquitto, topic_prefix):  # the session and its subscription exist
        pass
    await publish(mosquitto, [(f"{topic_prefix}acks/1", b"one")])
    async with _session(mosquitto, topic_prefix) as session:
        (first,) = await _received(session, 1)  # received, not acked: no PUBACK sent
    async with _session(mosquitto, topic_prefix) as session:
        (again,) = await _received(session, 1)
        assert (again.topic, again.payload) == (first.topic, first.payload)
        assert session.ack([again]) == 1
        # positive evidence that nothing else is coming: a later message arrives alone
        await publish(mosquitto, [(f"{topic_prefix}acks/2", b"two")])
        (later,) = await _received(session, 1)
        assert later.payload == b"two"
        session.ack([later])
    async with _session(mosquitto, topic_prefix) as session:
        await publish(mosquitto, [(f"{topic_prefix}acks/3", b"three")])
        (last,) = await _received(session, 1)
        assert last.payload == b"three"  # neither "one" nor "two" came back: both were acked
        session.ack([last])


def test_a_gmqtt_without_the_hook_we_override_is_refused() -> None:
    class Renamed:
        def _handle_qos1_publish(self, mid: int, packet: bytes) -> None: ...

    class Reshaped:
        def _handle_qos_1_publish_packet(self, mid: int, packet: bytes) -> None: ...

    check_gmqtt_hook()  # the pinned gmqtt has it
    for handler in (Renamed, Reshaped):
        with pytest.raises(BrokerError, match="cannot defer PUBACKs"):
            check_gmqtt_hook(handler)


async def test_held_bytes_stay_bounded_until_acks_free_room(
    mosquitto: LocalMosquitto, topic_prefix: str
) -> None:
    mib = b"x" * (1 << 20)
    session = Subscription(
        broker=Broker(port=mosquitto.port),
        client_id=f"bytes-{topic_prefix}",
        topics=[f"{topic_prefix}bytes/#"],
        max_held_bytes=3 << 20,
        wake_at=1,
    )
    async with session:
        await publish(mosquitto, [(f"{topic_prefix}bytes/{i}", mib) for i in range(12)])
        await wait_until(lambda: _paused(session))
        held = session.take()
        # paused once over the limit: what is held is the limit plus what the socket had
        # buffered when reading stopped (a few MiB at most), never the whole backlog
        assert session.pauses == 1 and 3 <= len(held) < 12
        got = list(held)
        while len(got) < 12:  # acks free room, reading resumes, the rest arrives
            session.ack(held)
            held = await _received(session, 1)
            got.extend(held)
        session.ack(held)
        assert len(got) == 12 and session.held_bytes == 0


async def _paused(session: Subscription) -> bool:
    return session.pauses > 0


async def test_acks_on_a_connection_gone_are_dropped_not_raised(
    mosquitto: LocalMosquitto, topic_prefix: str
) -> None:
    async with _session(mosquitto, topic_prefix):
        pass
    await publish(mosquitto, [(f"{topic_prefix}acks/gone", b"x")])
    async with _session(mosquitto, topic_prefix) as session:
        (got,) = await _received(session, 1)
        session._client._connection._transport.close()  # the socket dies under us
        assert session.ack([got]) == 0  # re-sent by the broker later: a duplicate then
    async with _session(mosquitto, topic_prefix) as session:
        (again,) = await _received(session, 1)
        assert again.payload == b"x"
        session.ack([again])
