"""A new kind added while gateways publish: refused before, stored after, the refused
values replayed once (issue 'An open device model', its 'done when')."""

from __future__ import annotations

import msgspec

from citytel.local import LocalMosquitto
from citytel.replay import replay
from devices.catalog import shipped_document
from devices.catalog_model import CatalogDocument, KindSpec, MetricSpec
from devices.contract import topic
from storage import catalog
from storage.database import connect
from tests.helpers import T0_MS, make_ingester, publish, query, reading, telemetry, wait_until

NOISE = ("noise_laeq_db", "noise_lamax_db", "noise_la90_db")


def _with_noise_monitor() -> CatalogDocument:
    doc = shipped_document()
    kind = KindSpec(
        id="noise_monitor",
        description="a sound level meter of another vendor",
        fiware="NoiseLevelObserved",
        grid_deg=0.01,
    )
    metrics = [
        MetricSpec(
            id=60 + i,
            name=name,
            kind="noise_monitor",
            unit="dB",
            unit_code="2N",
            low=0,
            high=200,
            fiware=f"NoiseLevelObserved.{name}",
            description=name,
        )
        for i, name in enumerate(NOISE)
    ]
    return doc.model_copy(update={"kinds": (*doc.kinds, kind), "metrics": (*doc.metrics, *metrics)})


def _noise(seq: int) -> bytes:
    t = T0_MS + seq * 60_000
    return telemetry("gw-n", seq, [reading("nm-1", t, **dict.fromkeys(NOISE, 40.0 + seq))])


async def _values(database_url: str) -> tuple[int, int]:
    rows = await query(
        database_url,
        "SELECT count(*), count(DISTINCT (r.time, r.metric)) FROM metric_values r"
        " JOIN devices d ON d.id = r.device WHERE d.device_id = 'nm-1'",
    )
    return rows[0]  # type: ignore[return-value]


async def test_a_new_kind_is_taken_up_live_and_its_refused_values_replayed_once(
    database_url: str, mosquitto: LocalMosquitto, topic_prefix: str
) -> None:
    p = topic_prefix
    options = {"batch_max_wait_s": 0.05, "catalog_poll_s": 0.2}
    async with make_ingester(database_url, mosquitto, p, "live", **options) as ingester:
        await publish(
            mosquitto, [(topic("gw-n", "telemetry", prefix=p), _noise(s)) for s in (1, 2)]
        )
        refused = "SELECT count(*) FROM dead_letters WHERE reason = 'unknown_metric'"
        await wait_until(lambda: _is(query(database_url, refused), 6))
        conn = await connect(database_url, autocommit=True)
        try:
            applied = await catalog.apply(conn, _with_noise_monitor(), source="cli")
        finally:
            await conn.close()

        async def taken_up() -> bool:
            return ingester.stats.catalog_version == applied.version

        await wait_until(taken_up)
        announce = {
            "gateway_id": "gw-n",
            "devices": [{"device_id": "nm-1", "kind": "noise_monitor"}],
        }
        await publish(
            mosquitto,
            [
                (topic("gw-n", "devices", prefix=p), msgspec.json.encode(announce)),
                *[(topic("gw-n", "telemetry", prefix=p), _noise(s)) for s in (3, 4)],
            ],
        )

        async def stored_live() -> bool:
            return (await _values(database_url))[0] == 6

        await wait_until(stored_live)
    assert await _values(database_url) == (6, 6)  # the two messages after the apply
    first = await replay(database_url, reason="unknown_metric")
    again = await replay(database_url, reason="unknown_metric")
    assert (first.replayed, first.values, first.still_refused) == (6, 6, 0)
    assert (again.replayed, again.values) == (0, 0)
    assert await _values(database_url) == (12, 12)  # each value once
    kind = await query(database_url, "SELECT kind FROM devices WHERE device_id = 'nm-1'")
    assert kind == [("noise_monitor",)]
    minute = await query(
        database_url,
        "SELECT sum(count) FROM rollups r JOIN devices d ON d.id = r.device"
        " WHERE d.device_id = 'nm-1' AND width_s = 60",
    )
    assert minute == [(12,)]  # the replayed values are in the rollups too


async def _is(rows: object, n: int) -> bool:
    return (await rows)[0][0] == n  # type: ignore[index, misc]
