from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import psycopg
from psycopg.rows import TupleRow

from devices.columns import NO_MESSAGE, NO_TIME, DeadLetterRow, MessageColumns, ValueColumns
from storage.database import connect
from storage.registry import Registry
from storage.writer import write_batch


def _messages(gateway: int, seqs: list[int]) -> MessageColumns:
    n = len(seqs)
    return MessageColumns(
        gateway=np.full(n, gateway, dtype=np.int32),
        seq=np.array(seqs, dtype=np.int64),
        sent_at_us=np.full(n, NO_TIME, dtype=np.int64),
        received_at_us=np.full(n, 1_763_762_999_000_000, dtype=np.int64),
    )


def _values(device: int, per_message: int, n_messages: int) -> ValueColumns:
    n = per_message * n_messages
    rng = np.random.default_rng(7)
    return ValueColumns(
        time_us=1_763_762_999_000_000 + np.arange(n, dtype=np.int64) * 1_000_001,
        device=np.full(n, device, dtype=np.int32),
        metric=np.full(n, 1, dtype=np.int16),
        value=rng.normal(40, 5, n),
        message=np.repeat(np.arange(n_messages, dtype=np.int32), per_message),
        reading=np.arange(n, dtype=np.int32),
    )


async def _keys(conn: psycopg.AsyncConnection[TupleRow]) -> tuple[int, int]:
    registry = Registry()
    gateways = await registry.gateway_keys(conn, ["gw-1"])
    devices = await registry.device_keys(conn, ["sl-1"], {"sl-1": gateways["gw-1"]})
    return gateways["gw-1"], int(devices[0])


async def test_binary_copy_stores_exact_times_and_values(database_url: str) -> None:
    conn = await connect(database_url, autocommit=True)
    try:
        gateway, device = await _keys(conn)
        values = _values(device, 5, 2)
        result = await write_batch(conn, _messages(gateway, [1, 2]), values, [])
        assert (result.messages, result.duplicates, result.values) == (2, 0, 10)
        cur = await conn.execute(
            "SELECT time, device, metric, value FROM metric_values ORDER BY time"
        )
        rows = await cur.fetchall()
        times = [int(r[0].timestamp() * 1_000_000) for r in rows]
        assert times == values.time_us.tolist()
        assert [r[3] for r in rows] == values.value.tolist()  # float8 round-trips exactly
        assert {(r[1], r[2]) for r in rows} == {(device, 1)}
        cur = await conn.execute('SELECT seq, readings, "values" FROM messages ORDER BY seq')
        assert await cur.fetchall() == [(1, 5, 5), (2, 5, 5)]
        cur = await conn.execute(
            "SELECT last_seq, messages_total FROM gateways WHERE id = %s", (gateway,)
        )
        assert await cur.fetchone() == (2, 2)
    finally:
        await conn.close()


async def test_a_message_written_twice_is_stored_once(database_url: str) -> None:
    conn = await connect(database_url, autocommit=True)
    try:
        gateway, device = await _keys(conn)
        letter = DeadLetterRow(0, "t", "out_of_range", "x", b"{}", "gw-1", 2, message=1)
        first = await write_batch(conn, _messages(gateway, [1, 2]), _values(device, 3, 2), [letter])
        # the batch comes again (a re-delivery) with one new message, seq 3
        letter_again = DeadLetterRow(0, "t", "out_of_range", "x", b"{}", "gw-1", 2, message=0)
        again = await write_batch(
            conn, _messages(gateway, [2, 3, 1]), _values(device, 3, 3), [letter_again]
        )
        assert (first.messages, first.values, len(first.dead_letters)) == (2, 6, 1)
        assert (again.messages, again.duplicates, again.values) == (1, 2, 3)
        assert again.dead_letters == []  # the letter belonged to a duplicate
        cur = await conn.execute("SELECT count(*) FROM metric_values")
        assert await cur.fetchone() == (9,)
        cur = await conn.execute("SELECT count(*) FROM dead_letters")
        assert await cur.fetchone() == (1,)
    finally:
        await conn.close()


async def test_dead_letters_without_a_message_are_always_written(database_url: str) -> None:
    conn = await connect(database_url, autocommit=True)
    try:
        at = int(datetime(2025, 11, 21, tzinfo=UTC).timestamp() * 1_000_000)
        letter = DeadLetterRow(
            at,
            "city/v1/gateways/gw-1/telemetry",
            "malformed",
            "not JSON",
            b"\x00\xff",
            message=NO_MESSAGE,
        )
        empty = _messages(1, [])
        for _ in range(2):
            await write_batch(conn, empty, _values(1, 0, 0), [letter])
        cur = await conn.execute("SELECT received_at, reason, payload FROM dead_letters")
        rows = await cur.fetchall()
        assert rows == [(datetime(2025, 11, 21, tzinfo=UTC), "malformed", b"\x00\xff")] * 2
    finally:
        await conn.close()


async def test_unannounced_devices_are_registered_once(database_url: str) -> None:
    conn = await connect(database_url, autocommit=True)
    try:
        registry = Registry()
        gw = (await registry.gateway_keys(conn, ["gw-9"]))["gw-9"]
        keys = await registry.device_keys(conn, ["a", "b", "a"], {"a": gw, "b": gw})
        assert keys[0] == keys[2] != keys[1]
        fresh = Registry()  # another ingester: same keys from the database
        again = await fresh.device_keys(conn, ["b", "a"], {"a": gw, "b": gw})
        assert again.tolist() == [keys[1], keys[0]]
        cur = await conn.execute("SELECT device_id, announced, kind FROM devices ORDER BY 1")
        assert await cur.fetchall() == [("a", False, None), ("b", False, None)]
    finally:
        await conn.close()
