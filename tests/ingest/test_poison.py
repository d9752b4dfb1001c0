"""No payload from one gateway can stop, stall or rob the ingester (the hostile-gateway table
of docs/reliability.md): each case through a real broker, database and ingester."""

from __future__ import annotations

import msgspec
import psycopg
import pytest

from citytel.local import LocalMosquitto
from devices.contract import topic
from devices.errors import StorageRejected, StorageUnavailable
from storage.database import classify, connect
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


def _nested(depth: int) -> bytes:
    """JSON attributes nested ``depth`` deep (written out: encoders refuse such depth)."""
    return b'{"a":' * depth + b"{}" + b"}" * depth


def _announce(gateway: str, device: str, attributes: bytes) -> bytes:
    device_info = b'{"device_id":"%s","kind":"streetlight","attributes":%s}' % (
        device.encode(),
        attributes,
    )
    return b'{"gateway_id":"%s","devices":[%s]}' % (gateway.encode(), device_info)


async def _reasons(database_url: str) -> dict[str, int]:
    rows = await query(database_url, "SELECT reason, count(*) FROM dead_letters GROUP BY 1")
    return {r: n for r, n in rows}


async def test_hostile_payloads_cost_only_themselves(
    database_url: str, mosquitto: LocalMosquitto, topic_prefix: str
) -> None:
    p = topic_prefix
    t = T0_MS + 60_000
    bad_readings = [reading(f"d{i}", t, no_such_metric=1.0) for i in range(9_000)]
    hostile = [
        # attributes nested ~980 deep: once a RecursionError that killed the ingester
        (topic("gw-x", "devices", prefix=p), _announce("gw-x", "sl-deep", _nested(980))),
        # a NUL in attributes: once a refusal of the whole batch by PostgreSQL
        (topic("gw-x", "devices", prefix=p), _announce("gw-x", "sl-nul", b'{"note":"a\\u0000b"}')),
        # a 9,000-character gateway id in the topic: once retried forever (SQLSTATE 54)
        (topic("g" * 9_000, "status", prefix=p), b"online"),
        # channels nobody subscribed to: once acknowledged by the broker and lost
        (f"{p}city/v1/gateways/gw-x/telemetry/json", telemetry("gw-x", 90, [])),
        (f"{p}city/v1/gateways/gw-x/Telemetry", telemetry("gw-x", 91, [])),
        # 1e309 in one value: once the whole message was malformed
        (
            topic("gw-x", "telemetry", prefix=p),
            telemetry("gw-x", 1, [reading("sl-1", t, power_w=5.0)]).replace(
                b'"readings":[',
                b'"readings":[{"device_id":"sl-2","ts":%d,"metrics":'
                b'{"power_w":1e309,"dim_pct":40.0}},' % t,
            ),
        ),
        # 9,000 bad readings: once 9,000 dead-letter rows
        (topic("gw-x", "telemetry", prefix=p), telemetry("gw-x", 2, bad_readings)),
        # sent_at of -10^15 ms: once the whole message was refused by the database
        (
            topic("gw-x", "telemetry", prefix=p),
            msgspec.json.encode(
                {
                    "gateway_id": "gw-x",
                    "seq": 3,
                    "sent_at": -(10**15),
                    "readings": [reading("sl-3", t, power_w=7.0)],
                }
            ),
        ),
        # the identity of seq 1 again with other readings: once kept silently
        (
            topic("gw-x", "telemetry", prefix=p),
            telemetry("gw-x", 1, [reading("sl-1", t, power_w=99.0)]),
        ),
    ]
    good = [
        (
            topic("gw-ok", "telemetry", prefix=p),
            telemetry("gw-ok", s, [reading("ok", t, power_w=s)]),
        )
        for s in range(1, 6)
    ]
    async with make_ingester(database_url, mosquitto, p, "poison", batch_max_wait_s=0.05) as ing:
        await publish(mosquitto, [*hostile, *good])
        await wait_until(lambda: delivered(ing, len(hostile) + len(good)), within_s=60)
        assert ing._task is not None and not ing._task.done()  # the loop still runs

    reasons = await _reasons(database_url)
    # the deep one is refused by the decoder's recursion guard or by our depth limit
    assert reasons.get("invalid_device", 0) + reasons.get("malformed", 0) == 2
    assert reasons.get("invalid_topic") == 3
    assert reasons.get("not_finite") == 1
    assert reasons.get("unknown_metric") == 100  # the cap ...
    assert reasons.get("dead_letters_capped") == 1  # ... and one row counting the rest
    assert reasons.get("sent_at_out_of_range") == 1
    assert reasons.get("conflicting_duplicate") == 1
    assert "storage_rejected" not in reasons
    summary = await query(
        database_url, "SELECT detail FROM dead_letters WHERE reason = 'dead_letters_capped'"
    )
    assert summary == [("8900 more refusals in this message: {'unknown_metric': 8900}",)]
    stored = await query(
        database_url,
        "SELECT d.device_id, r.value FROM metric_values r JOIN devices d ON d.id = r.device"
        " WHERE d.device_id IN ('sl-1', 'sl-2', 'sl-3') ORDER BY 1",
    )
    # sl-2 kept its finite value; seq 1 kept its first content; seq 3 kept its reading
    assert stored == [("sl-1", 5.0), ("sl-2", 40.0), ("sl-3", 7.0)]
    sent = await query(
        database_url,
        "SELECT m.sent_at FROM messages m JOIN gateways g ON g.id = m.gateway"
        " WHERE g.gateway_id = 'gw-x' AND m.seq = 3",
    )
    assert sent == [(None,)]
    ok = await query(
        database_url,
        "SELECT count(*) FROM messages m JOIN gateways g ON g.id = m.gateway"
        " WHERE g.gateway_id = 'gw-ok'",
    )
    assert ok == [(5,)]


async def test_retained_telemetry_is_refused(
    database_url: str, mosquitto: LocalMosquitto, topic_prefix: str
) -> None:
    p = topic_prefix
    t = T0_MS + 60_000
    retained = [
        (topic("gw-r", "telemetry", prefix=p), telemetry("gw-r", 1, [reading("r", t, power_w=1.0)]))
    ]
    await publish(mosquitto, retained, retain=True)
    async with make_ingester(database_url, mosquitto, p, "retain", batch_max_wait_s=0.05) as ing:
        await wait_until(lambda: delivered(ing, 1))
    assert await _reasons(database_url) == {"retained": 1}
    assert await query(database_url, "SELECT count(*) FROM messages") == [(0,)]
    await publish(mosquitto, [(retained[0][0], b"")], retain=True)  # clear it for the broker


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        # an index row too large: program limit exceeded, SQLSTATE 54000
        (
            "INSERT INTO gateways (gateway_id) SELECT string_agg(md5(random()::text), '')"
            " FROM generate_series(1, 300)",
            StorageRejected,
        ),
        ("SELECT 1 / 0", StorageRejected),  # a data exception, SQLSTATE 22012
        ("SELECT pg_terminate_backend(pg_backend_pid())", StorageUnavailable),  # connection gone
    ],
)
async def test_database_errors_are_classified_by_sqlstate(
    database_url: str, sql: str, expected: type[Exception]
) -> None:
    conn = await connect(database_url, autocommit=True)
    try:
        with pytest.raises(psycopg.Error) as caught:
            await conn.execute(sql)  # type: ignore[arg-type]
        assert type(classify(caught.value)) is expected
    finally:
        await conn.close()
