"""Catalog versions in the database and the rules a new version must keep."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

from devices.catalog import METRICS, shipped_document
from devices.catalog_model import CatalogDocument, from_json
from storage import catalog
from storage.database import connect
from storage.migrate import upgrade


def _edited(**metric_19: object) -> CatalogDocument:
    """The shipped document with metric 19 changed as given."""
    data = shipped_document().model_dump(mode="json")
    for m in data["metrics"]:
        if m["id"] == 19:
            m.update(metric_19)
    return from_json(data)


def _plus(kinds: list[dict[str, Any]], metrics: list[dict[str, Any]]) -> CatalogDocument:
    data = shipped_document().model_dump(mode="json")
    data["kinds"] += kinds
    data["metrics"] += metrics
    return from_json(data)


FERRY = {"id": "ferry_dock", "description": "a pier", "fiware": "Device", "grid_deg": 0.01}


def _metric(id_: int, name: str, kind: str = "ferry_dock", **more: object) -> dict[str, Any]:
    fixed = {"unit": "1", "unit_code": "C62", "low": 0, "high": 5000, "fiware": "Device.value"}
    return {"id": id_, "name": name, "kind": kind, "description": "people on board"} | fixed | more


OLD = shipped_document()


@pytest.mark.parametrize(
    ("new", "reason"),
    [
        (_edited(name="bay_taken"), "metric 19 (bay_occupied) changes its name"),
        (_edited(kind="waste_bin"), "changes its kind from 'parking_bay' to 'waste_bin'"),
        (_edited(unit="%"), "changes its unit from '1' to '%'"),
        (_edited(unit_code="P1"), "changes its unit_code from 'C62' to 'P1'"),
    ],
)
def test_an_id_never_changes_meaning(new: CatalogDocument, reason: str) -> None:
    reasons = catalog.refusals(OLD, new)
    assert len(reasons) == 1 and reason in reasons[0]


def test_a_metric_is_never_removed() -> None:
    data = OLD.model_dump(mode="json")
    data["metrics"] = [m for m in data["metrics"] if m["id"] != 7]
    assert catalog.refusals(OLD, from_json(data)) == [
        "metric 7 (ambient_lux) is missing: metric ids are never removed"
    ]


def test_a_name_is_never_reused_by_another_id() -> None:
    # bay_occupied was metric 19 once; a version without it was refused, but a name
    # seen in any stored version stays taken
    new = _plus([FERRY], [_metric(50, "passengers")])
    assert catalog.refusals(OLD, new, names_ever={"passengers": 49}) == [
        "metric 50 takes the name 'passengers' of metric 49: metric names are never reused"
    ]
    assert catalog.refusals(OLD, new, names_ever={"passengers": 50}) == []


def test_an_id_of_an_earlier_version_is_never_reused() -> None:
    new = _plus([FERRY], [_metric(50, "passengers")])
    assert catalog.refusals(OLD, new, names_ever={"boats": 50}) == [
        "metric 50 was 'boats' in an earlier version: metric ids are never reused"
    ]


def test_a_kind_in_use_is_not_removed_and_an_unused_one_is() -> None:
    with_ferry = _plus([FERRY], [])
    assert catalog.refusals(with_ferry, OLD, kinds_in_use={"streetlight"}) == []
    assert catalog.refusals(with_ferry, OLD, kinds_in_use={"ferry_dock"}) == [
        "kind 'ferry_dock' is removed but registered devices have it"
    ]


def test_what_may_change_is_accepted_and_listed() -> None:
    new = _edited(high=2, description="occupied", public=False, daily_rhythm=False)
    assert catalog.refusals(OLD, new) == []
    assert catalog.changes(OLD, new) == [
        "~ metric 19 (bay_occupied): high: 1.0 -> 2.0, description: '1 while a vehicle stands"
        " in the bay' -> 'occupied', daily_rhythm: True -> False, public: True -> False"
    ]
    added = _plus([FERRY], [_metric(50, "passengers")])
    assert catalog.changes(OLD, added) == ["+ kind ferry_dock", "+ metric 50 (passengers)"]


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    c = await connect(database_url, autocommit=True)
    try:
        yield c
    finally:
        await c.close()


async def _rows(conn: psycopg.AsyncConnection[Any], sql: str) -> list[tuple[Any, ...]]:
    cur = await conn.execute(sql)  # type: ignore[arg-type]
    return await cur.fetchall()


async def test_db_upgrade_stores_the_shipped_catalog_as_version_1(
    conn: psycopg.AsyncConnection[Any],
) -> None:
    assert await catalog.catalog_version(conn) == 1
    loaded = await catalog.load_catalog(conn)
    assert loaded.version == 1 and loaded.document == shipped_document()
    rows = await _rows(conn, "SELECT id, name, kind, unit, public FROM metrics ORDER BY id")
    assert rows == [(m.id, m.name, m.kind, m.unit, m.public) for m in METRICS]
    await upgrade(conn)  # again: nothing new
    assert await catalog.catalog_version(conn) == 1


async def test_apply_adds_a_version_keeps_metrics_in_step_and_notifies(
    conn: psycopg.AsyncConnection[Any], database_url: str
) -> None:
    listener = await connect(database_url, autocommit=True)
    try:
        await listener.execute(f"LISTEN {catalog.CHANNEL}")
        new = _plus([FERRY], [_metric(50, "passengers", public=True)])
        done = await catalog.apply(conn, new, source="cli")
        assert (done.version, done.created) == (2, True)
        assert done.changes == ("+ kind ferry_dock", "+ metric 50 (passengers)")
        note = await anext(listener.notifies(timeout=5))
        assert (note.channel, note.payload) == (catalog.CHANNEL, "2")
    finally:
        await listener.close()
    assert await _rows(conn, "SELECT name, kind, public FROM metrics WHERE id = 50") == [
        ("passengers", "ferry_dock", True)
    ]
    again = await catalog.apply(conn, new, source="api")
    assert (again.version, again.created, again.changes) == (2, False, ())
    assert (await catalog.load_catalog(conn)).by_name["passengers"].id == 50
    assert await catalog.newer_catalog(conn, than=2) is None
    newer = await catalog.newer_catalog(conn, than=1)
    assert newer is not None and newer.version == 2 and "passengers" in newer.by_name
    # a changed range reaches the metrics table the ingester reads
    await catalog.apply(conn, _plus([FERRY], [_metric(50, "passengers", high=9000)]), source="cli")
    assert await _rows(conn, "SELECT high FROM metrics WHERE id = 50") == [(9000.0,)]
    assert await catalog.catalog_version(conn) == 3
    await upgrade(conn)  # an operator's version is not overwritten by the shipped one
    assert await catalog.catalog_version(conn) == 3


async def test_a_refused_version_changes_nothing(conn: psycopg.AsyncConnection[Any]) -> None:
    await conn.execute("INSERT INTO devices (device_id, kind) VALUES ('dock-1', 'ferry_dock')")
    await catalog.apply(conn, _plus([FERRY], [_metric(50, "passengers")]), source="cli")
    bad = _edited(unit="%")  # and drops ferry_dock, which dock-1 has, and metric 50
    with pytest.raises(catalog.CatalogRefused) as caught:
        await catalog.apply(conn, bad, source="api")
    assert caught.value.reasons == [
        "metric 19 (bay_occupied) changes its unit from '1' to '%': an id never changes"
        " meaning; add a metric with a new id instead",
        "metric 50 (passengers) is missing: metric ids are never removed",
        "kind 'ferry_dock' is removed but registered devices have it",
    ]
    assert await catalog.catalog_version(conn) == 2
    assert await _rows(conn, "SELECT unit FROM metrics WHERE id = 19") == [("1",)]
    with pytest.raises(catalog.CatalogRefused):
        await catalog.check(conn, bad)
    fine = _plus([FERRY], [_metric(50, "passengers", high=7)])
    assert await catalog.check(conn, fine) == ["~ metric 50 (passengers): high: 5000.0 -> 7.0"]
    assert await catalog.catalog_version(conn) == 2  # check applies nothing


async def test_a_name_of_an_earlier_version_stays_taken(
    conn: psycopg.AsyncConnection[Any],
) -> None:
    # an earlier version held metric 50 'passengers' (stored directly: apply would
    # never let a later version drop it), the version in force does not
    await conn.execute(
        "INSERT INTO catalog_versions (version, document, digest, source)"
        " VALUES (2, %s::jsonb, 'x', 'cli')",
        (_plus([FERRY], [_metric(50, "passengers")]).model_dump_json(),),
    )
    await conn.execute(
        "INSERT INTO catalog_versions (version, document, digest, source)"
        " VALUES (3, %s::jsonb, 'y', 'cli')",
        (shipped_document().model_dump_json(),),
    )
    with pytest.raises(catalog.CatalogRefused, match="takes the name 'passengers' of metric 50"):
        await catalog.apply(conn, _plus([FERRY], [_metric(51, "passengers")]), source="cli")


async def test_db_upgrade_brings_a_newer_shipped_catalog_in(
    conn: psycopg.AsyncConnection[Any],
) -> None:
    # as if version 1 came from an older citytel, without the bike counter
    data = shipped_document().model_dump(mode="json")
    data["kinds"] = [k for k in data["kinds"] if k["id"] != "bike_counter"]
    data["metrics"] = [m for m in data["metrics"] if m["kind"] != "bike_counter"]
    older = from_json(data)
    await conn.execute(
        "UPDATE catalog_versions SET document = %s::jsonb, digest = %s WHERE version = 1",
        (older.model_dump_json(), catalog.digest(older)),
    )
    await conn.execute("DELETE FROM metrics WHERE kind = 'bike_counter'")
    await upgrade(conn)
    stored = await catalog.current(conn)
    assert stored is not None and (stored.version, stored.source) == (2, "shipped")
    assert stored.document == shipped_document()
    assert await _rows(conn, "SELECT kind FROM metrics WHERE name = 'bicycles'") == [
        ("bike_counter",)
    ]
