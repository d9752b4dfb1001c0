"""deploy/grafana: the dashboard's SQL runs on a live citytel database, its Prometheus
queries name metrics that /metrics serves, and its data sources are provisioned."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import yaml

from api.routes.service import render
from storage import queries
from storage.database import connect

GRAFANA = Path(__file__).resolve().parents[2] / "deploy" / "grafana"


def _targets() -> list[dict[str, Any]]:
    dashboard = json.loads((GRAFANA / "dashboards" / "citytel.json").read_text())
    return [t for p in dashboard["panels"] for t in p.get("targets", [])]


def _sql(raw: str, start: datetime, end: datetime) -> str:
    """Grafana's macros, expanded as its PostgreSQL data source does."""
    expanded = re.sub(
        r"\$__timeFilter\((\w+)\)",
        lambda m: f"{m[1]} BETWEEN '{start.isoformat()}' AND '{end.isoformat()}'",
        raw,
    )
    assert "$__" not in expanded, f"a macro this test does not expand: {raw}"
    return expanded


def test_every_sql_query_runs_on_a_citytel_database(database_url: str) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO rollups (device, metric, width_s, window_start, count, sum, mean, m2,"
            " min, max, first_time, first, last_time, last) VALUES"
            " (1, 1, 60, %(t)s, 5, 5, 1, 0, 1, 1, %(t)s, 1, %(t)s, 1),"
            " (2, 1, 60, %(t)s, 7, 7, 1, 0, 1, 1, %(t)s, 1, %(t)s, 1)",
            {"t": now - timedelta(minutes=5)},
        )
        sql = [t["rawSql"] for t in _targets() if "rawSql" in t]
        assert len(sql) >= 5
        results = {}
        for raw in sql:
            results[raw] = conn.execute(_sql(raw, now - timedelta(hours=6), now)).fetchall()  # type: ignore[arg-type]
    (values,) = [rows for raw, rows in results.items() if "FROM rollups" in raw]
    assert [row[1] for row in values] == [12]


async def test_every_prometheus_query_names_a_metric_the_api_serves(database_url: str) -> None:
    conn = await connect(database_url, autocommit=True)
    try:
        served = set(
            re.findall(r"^# TYPE (\w+)", render(await queries.service_figures(conn)), re.MULTILINE)
        )
    finally:
        await conn.close()
    exprs = [t["expr"] for t in _targets() if "expr" in t]
    named = {n for e in exprs for n in re.findall(r"\b(citytel_\w+)", e)}
    assert named and named <= served, named - served


def test_the_panels_use_the_provisioned_data_sources() -> None:
    provisioned = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "citytel.yaml").read_text()
    )
    uids = {d["uid"] for d in provisioned["datasources"]}
    used = {t["datasource"]["uid"] for t in _targets()}
    assert used == uids
