from __future__ import annotations

from devices.catalog import METRICS
from storage.database import Mode, connect, current_mode, timescaledb_loadable
from storage.migrate import migrations, upgrade


async def test_upgrade_applies_every_migration_then_is_a_no_op(empty_database_url: str) -> None:
    conn = await connect(empty_database_url, autocommit=True)
    try:
        timescaledb = await timescaledb_loadable(conn)  # False on the servers tests start
        first = await upgrade(conn)
        assert first.mode is (Mode.TIMESCALEDB if timescaledb else Mode.POSTGRESQL)
        every = tuple(m.version for m in migrations())
        assert first.applied == (every if timescaledb else tuple(v for v in every if v != 2))
        assert first.skipped == (() if timescaledb else (2,))
        again = await upgrade(conn)
        assert (again.applied, again.skipped) == ((), ())
        cur = await conn.execute("SELECT version, skipped FROM schema_migrations ORDER BY 1")
        assert await cur.fetchall() == [(v, v == 2 and not timescaledb) for v in every]
        assert await current_mode(conn) is first.mode
    finally:
        await conn.close()


async def test_metric_catalog_is_in_the_database(database_url: str) -> None:
    conn = await connect(database_url, autocommit=True)
    try:
        cur = await conn.execute("SELECT id, name, unit FROM metrics WHERE name = 'power_w'")
        assert await cur.fetchone() == (1, "power_w", "W")
        cur = await conn.execute("SELECT count(*) FROM metrics")
        row = await cur.fetchone()
        assert row is not None and row[0] == len(METRICS)
    finally:
        await conn.close()


def test_migrations_are_numbered_in_order_without_gaps() -> None:
    versions = [m.version for m in migrations()]
    assert versions == list(range(1, len(versions) + 1))
    assert [m.version for m in migrations() if m.timescaledb_only] == [2]


async def test_timescaledb_can_be_refused(empty_database_url: str) -> None:
    conn = await connect(empty_database_url, autocommit=True)
    try:
        report = await upgrade(conn, timescaledb="off")
        assert report.mode is Mode.POSTGRESQL and report.skipped == (2,)
    finally:
        await conn.close()
