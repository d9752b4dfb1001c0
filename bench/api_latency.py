"""Query API latency on a loaded city: the dashboard's questions, p50/p95, against baselines.

    python -m bench.api_latency [--devices 2000] [--days 30] [--interval 150] [--runs 50]
                                [--data-dir DIR] [--skip-load]

Loads a city straight into PostgreSQL by binary COPY: ``devices`` devices (80 %
streetlights, 10 % environmental sensors, 10 % traffic detectors, 3 metrics each, under
20 gateways), one reading every ``interval`` seconds for ``days`` days up to now
(2,000 x 30 days x 576 readings a day x 3 metrics ≈ 104 M values), the rollups the
ingester would have written (1 h and 15 min windows over every day; 1 min windows over
the last ``--minute-rollup-days``, since at this reading interval they are as many rows
as the raw values), and anomaly episodes (20,000 closed, 50 open). Indexes are dropped
for the load and built afterwards, then the tables are analysed.

Then it asks the dashboard's questions ``--runs`` times each, on random devices: through
the API (in process, over ASGI: key check, queries, JSON), and through the same
``storage.queries`` function on a connection of its own ("query"); and it answers the
same questions without what makes them fast ("baseline", same connection):
  latest values of 500 devices   baseline: DISTINCT ON over their raw readings
  one series, 24 h in 5 min      baseline: the same buckets from raw readings only
  one series, 30 days in 1 h     baseline: the same buckets from raw readings only
  open anomalies                 baseline: the same query with index scans disabled
It prints p50 and p95 of each and the ratio baseline p50 / query p50.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import psycopg

from api.app import create_app
from citytel.local import LocalPostgres
from storage import queries
from storage.copy import PG_EPOCH_US, VALUES_COPY, encode_columns, encode_values
from storage.database import connect
from storage.migrate import upgrade

METRICS = {
    "streetlight": (1, 4, 5),  # power_w, dim_pct, voltage_v
    "environment": (13, 11, 15),  # no2_ppb, pm2_5_ugm3, noise_dba
    "traffic": (16, 17, 18),  # speed_kmh, volume_veh, occupancy_pct
}
GATEWAYS = 20
US = 1_000_000

# PostgreSQL settings for the benchmark's own cluster: memory for a 100 M-row table,
# no fsync (the load is a throwaway; queries read, they do not write).
PG_SETTINGS = {
    "shared_buffers": "2GB",
    "work_mem": "64MB",
    "maintenance_work_mem": "1GB",
    "max_wal_size": "16GB",
    "effective_cache_size": "8GB",
    "random_page_cost": "1.1",
}


# ---- loading ---------------------------------------------------------------------------


def _kinds(devices: int) -> list[str]:
    n_env = n_tr = max(1, devices // 10)
    return ["environment"] * n_env + ["traffic"] * n_tr + ["streetlight"] * (devices - 2 * n_env)


async def load_registry(conn: psycopg.AsyncConnection[Any], devices: int) -> list[str]:
    """Gateways and devices; the devices' kinds in id order (ids 1..devices)."""
    rng = np.random.default_rng(1)
    kinds = _kinds(devices)
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO gateways (gateway_id, status, status_at, last_seen)"
            " VALUES (%s, 'online', now(), now())",
            [(f"gw-{g:02d}",) for g in range(GATEWAYS)],
        )
        await cur.executemany(
            "INSERT INTO devices (device_id, kind, gateway, latitude, longitude, announced)"
            " VALUES (%s, %s, %s, %s, %s, true)",
            [
                (
                    f"{k[:3]}-{i:05d}",
                    k,
                    1 + i % GATEWAYS,
                    41.65 + 0.35 * rng.random(),
                    -87.85 + 0.3 * rng.random(),
                )
                for i, k in enumerate(kinds)
            ],
        )
    return kinds


ROLLUP_COLUMNS = (
    "device, metric, width_s, window_start, count, sum, mean, m2, min, max,"
    " first_time, first, last_time, last"
)


def rollups_of(
    series_device: npt.NDArray[np.int32],
    series_metric: npt.NDArray[np.int16],
    t_us: npt.NDArray[np.int64],
    v: npt.NDArray[np.float64],
    width_s: int,
) -> bytes:
    """Rollup rows of width ``width_s`` for values laid out [series, k] (time-ordered
    within a series), as a COPY BINARY stream."""
    n_series, k = t_us.shape
    tt, vv = t_us.ravel(), v.ravel()
    sidx = np.repeat(np.arange(n_series), k)
    win = tt - tt % (width_s * US)
    starts = np.flatnonzero(np.r_[True, (sidx[1:] != sidx[:-1]) | (win[1:] != win[:-1])])
    ends = np.r_[starts[1:], len(tt)] - 1
    count = np.diff(np.r_[starts, len(tt)])
    total = np.add.reduceat(vv, starts)
    mean = total / count
    m2 = np.maximum(np.add.reduceat(vv * vv, starts) - total * mean, 0.0)
    g = sidx[starts]
    return encode_columns(
        [
            ("device", series_device[g].astype(np.int32)),
            ("metric", series_metric[g].astype(np.int16)),
            ("width", np.full(len(starts), width_s, np.int32)),
            ("window", win[starts] - PG_EPOCH_US),
            ("count", count.astype(np.int32)),
            ("sum", total),
            ("mean", mean),
            ("m2", m2),
            ("min", np.minimum.reduceat(vv, starts)),
            ("max", np.maximum.reduceat(vv, starts)),
            ("first_time", tt[starts] - PG_EPOCH_US),
            ("first", vv[starts]),
            ("last_time", tt[ends] - PG_EPOCH_US),
            ("last", vv[ends]),
        ]
    )


async def _copy(conn: psycopg.AsyncConnection[Any], statement: str, data: bytes) -> None:
    async with conn.cursor() as cur, cur.copy(statement) as copy:  # type: ignore[arg-type]
        for i in range(0, len(data), 1 << 24):
            await copy.write(data[i : i + (1 << 24)])


async def load_values(
    conn: psycopg.AsyncConnection[Any],
    kinds: list[str],
    *,
    days: int,
    interval_s: int,
    minute_rollup_days: int,
    end: datetime,
) -> int:
    """Readings and rollups, a day at a time; the number of values."""
    rng = np.random.default_rng(2)
    series_device = np.repeat(np.arange(1, len(kinds) + 1, dtype=np.int32), 3)
    series_metric = np.array([m for k in kinds for m in METRICS[k]], dtype=np.int16)
    n = len(series_device)
    phase = rng.integers(0, interval_s, n) * US
    base = rng.uniform(20, 80, n)
    amp = rng.uniform(1, 20, n)
    per_day = 86_400 // interval_s
    first_day = int((end - timedelta(days=days)).timestamp()) * US
    values = 0
    for day in range(days):
        started = time.perf_counter()
        t = first_day + day * 86_400 * US + phase[:, None] + np.arange(per_day) * interval_s * US
        v = base[:, None] + amp[:, None] * np.sin(2 * np.pi * (t % (86_400 * US)) / (86_400 * US))
        v += rng.normal(0, 1, v.shape)
        order = np.argsort(t.T.ravel(), kind="stable")  # values arrive in time order
        tt, vv = t.T.ravel()[order], v.T.ravel()[order]
        dd = np.tile(series_device, per_day)[order]
        mm = np.tile(series_metric, per_day)[order]
        await _copy(conn, VALUES_COPY, encode_values(tt, dd, mm, vv))
        widths = [3600, 900] + ([60] if day >= days - minute_rollup_days else [])
        for w in widths:
            stream = rollups_of(series_device, series_metric, t, v, w)
            await _copy(conn, f"COPY rollups ({ROLLUP_COLUMNS}) FROM STDIN (FORMAT BINARY)", stream)
        values += t.size
        print(f"  day {day + 1}/{days}: {t.size:,} values in {time.perf_counter() - started:.1f} s")
    return values


async def load_episodes(
    conn: psycopg.AsyncConnection[Any], devices: int, end: datetime, days: int
) -> None:
    rng = np.random.default_rng(3)
    span = days * 86_400
    rows = []
    for _ in range(20_000):
        start = end - timedelta(seconds=float(rng.uniform(0, span)))
        rows.append(
            (
                int(rng.integers(1, devices + 1)),
                "deviation",
                start,
                start + timedelta(minutes=float(rng.uniform(1, 120))),
            )
        )
    open_devices = rng.choice(np.arange(1, devices + 1), min(50, devices), replace=False)
    rows += [
        (int(d), "lamp_out", end - timedelta(hours=float(rng.uniform(0, 48))), None)
        for d in open_devices
    ]
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO episodes (device, metric, detector, started_at, ended_at, peak_score,"
            " severity) VALUES (%s, NULL, %s, %s, %s, 0.9, 'medium')",
            rows,
        )


INDEXES = [
    "CREATE INDEX metric_values_series_time ON metric_values (device, metric, time DESC)",
    "CREATE INDEX metric_values_time_brin ON metric_values USING brin (time)",
    "ALTER TABLE rollups ADD PRIMARY KEY (device, metric, width_s, window_start)",
    "CREATE INDEX rollups_window_brin ON rollups USING brin (window_start)",
]


async def load(url: str, args: argparse.Namespace, end: datetime) -> None:
    conn = await connect(url, autocommit=True)
    try:
        await upgrade(conn)
        for drop in (
            "DROP INDEX metric_values_series_time",
            "DROP INDEX metric_values_time_brin",
            "ALTER TABLE rollups DROP CONSTRAINT rollups_pkey",
            "DROP INDEX rollups_window_brin",
        ):
            await conn.execute(drop)  # type: ignore[arg-type]
        kinds = await load_registry(conn, args.devices)
        started = time.perf_counter()
        values = await load_values(
            conn,
            kinds,
            days=args.days,
            interval_s=args.interval,
            minute_rollup_days=args.minute_rollup_days,
            end=end,
        )
        copied = time.perf_counter() - started
        print(f"loaded {values:,} values in {copied:.0f} s ({values / copied:,.0f} values/s)")
        await load_episodes(conn, args.devices, end, args.days)
        started = time.perf_counter()
        for statement in INDEXES:
            await conn.execute(statement)  # type: ignore[arg-type]
        await conn.execute("VACUUM ANALYZE")
        print(f"indexes and analyse: {time.perf_counter() - started:.0f} s")
    finally:
        await conn.close()


# ---- measuring -------------------------------------------------------------------------


async def timed(runs: int, ask: Callable[[int], Awaitable[None]], warmup: int = 2) -> list[float]:
    """Milliseconds of ``runs`` calls of ``ask(i)``, after ``warmup`` unrecorded ones."""
    for i in range(warmup):
        await ask(-1 - i)
    out = []
    for i in range(runs):
        started = time.perf_counter()
        await ask(i)
        out.append((time.perf_counter() - started) * 1000)
    return out


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


NAIVE_LATEST = """
SELECT DISTINCT ON (r.device, r.metric) r.device, r.metric, r.time, r.value
FROM metric_values r WHERE r.device = ANY(%s) ORDER BY r.device, r.metric, r.time DESC
"""


Asker = Callable[[int], Awaitable[None]]
Result = tuple[str, list[float], list[float], list[float]]


async def measure(url: str, args: argparse.Namespace, end: datetime) -> list[Result]:
    rng = np.random.default_rng(4)
    conn = await connect(url, autocommit=True)
    made = await queries.create_key(conn, role="reader", name="bench")
    cur = await conn.execute("SELECT device_id, kind FROM devices ORDER BY id")
    devices = await cur.fetchall()
    envs = [d for d, k in devices if k == "environment"]
    app = create_app(database_url=url)
    results = []
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://bench",
            headers={"Authorization": f"Bearer {made.key}"},
            timeout=60,
        ) as client,
    ):

        async def get(path: str, params: dict[str, Any]) -> None:
            r = await client.get(path, params=params)
            if r.status_code != 200:
                raise RuntimeError(f"{path}: {r.status_code} {r.text[:300]}")

        many = min(500, len(devices))

        def some(n: int) -> list[str]:
            return [devices[i][0] for i in rng.choice(len(devices), n, replace=False)]

        def series_params(hours: int, bucket: str) -> dict[str, Any]:
            return {
                "device": str(rng.choice(envs)),
                "metric": "no2_ppb",
                "bucket": bucket,
                "from": (end - timedelta(hours=hours)).isoformat(),
                "to": end.isoformat(),
            }

        async def storage_series(hours: int, bucket: str, *, rollups: bool) -> None:
            params = series_params(hours, bucket)
            keys = await queries.resolve_series(conn, [params["device"]], ["no2_ppb"])
            req = queries.SeriesRequest(
                start=end - timedelta(hours=hours), end=end, bucket=bucket, use_rollups=rollups
            )
            await queries.bucketed(conn, keys, req)

        async def storage_open(*, indexes: bool) -> None:
            async with conn.transaction():
                if not indexes:
                    await conn.execute("SET LOCAL enable_indexscan = off")
                    await conn.execute("SET LOCAL enable_bitmapscan = off")
                await queries.list_anomalies(
                    conn, queries.EpisodeFilter(state="open"), after=None, limit=101
                )

        async def storage_latest(*, naive: bool) -> None:
            ids = [int(x) + 1 for x in rng.choice(len(devices), many, replace=False)]
            if naive:
                await _discard(conn.execute(NAIVE_LATEST, (ids,)))
            else:
                names = [devices[i - 1][0] for i in ids]
                await queries.latest_values(conn, device_ids=names, limit=100_000)

        hours = 24 * args.days
        cases: list[tuple[str, Asker, Asker, Asker]] = [
            (
                f"latest values of {many} devices",
                lambda i: get("/v1/latest", {"device": some(many)}),
                lambda i: storage_latest(naive=False),
                lambda i: storage_latest(naive=True),
            ),
            (
                "one series, 24 h in 5 min buckets",
                lambda i: get("/v1/series", series_params(24, "5m")),
                lambda i: storage_series(24, "5m", rollups=True),
                lambda i: storage_series(24, "5m", rollups=False),
            ),
            (
                f"one series, {args.days} days in 1 h buckets",
                lambda i: get("/v1/series", series_params(hours, "1h")),
                lambda i: storage_series(hours, "1h", rollups=True),
                lambda i: storage_series(hours, "1h", rollups=False),
            ),
            (
                "open anomalies",
                lambda i: get("/v1/anomalies", {"state": "open"}),
                lambda i: storage_open(indexes=True),
                lambda i: storage_open(indexes=False),
            ),
        ]
        for name, api, fast, slow in cases:
            api_ms = await timed(args.runs, api)
            fast_ms = await timed(args.runs, fast)
            base_ms = await timed(args.baseline_runs, slow, warmup=1)
            results.append((name, api_ms, fast_ms, base_ms))
            print(
                f"  {name}: API p50 {p(api_ms, 0.5):.1f} ms, query p50 {p(fast_ms, 0.5):.1f} ms,"
                f" baseline p50 {p(base_ms, 0.5):.1f} ms"
            )
    await conn.close()
    return results


async def _discard(pending: Awaitable[Any]) -> None:
    cur = await pending
    await cur.fetchall()


def report(results: list[Result], args: argparse.Namespace) -> None:
    print(
        f"\n{args.devices} devices x {args.days} days, a reading every {args.interval} s;"
        f" {args.runs} runs each, baseline {args.baseline_runs} runs; milliseconds"
    )
    print(
        f"{'question':38} {'API p50':>8} {'API p95':>8} {'query p50':>10} {'query p95':>10}"
        f" {'base p50':>9} {'base p95':>9} {'base/query':>10}"
    )
    for name, api_ms, fast_ms, base_ms in results:
        ratio = statistics.median(base_ms) / statistics.median(fast_ms)
        print(
            f"{name:38} {p(api_ms, 0.5):8.1f} {p(api_ms, 0.95):8.1f} {p(fast_ms, 0.5):10.1f}"
            f" {p(fast_ms, 0.95):10.1f} {p(base_ms, 0.5):9.1f} {p(base_ms, 0.95):9.1f}"
            f" {ratio:9.1f}x"
        )


async def run(url: str, args: argparse.Namespace) -> None:
    conn = await connect(url, autocommit=True)
    cur = await conn.execute("SELECT to_regclass('metric_values') IS NOT NULL")
    row = await cur.fetchone()
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    if row and row[0]:
        cur = await conn.execute("SELECT max(time) FROM metric_values")
        newest = (await cur.fetchone() or [None])[0]
        if newest:  # the load ended its values before this hour
            end = (newest + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    await conn.close()
    if not args.skip_load:
        await load(url, args, end)
    report(await measure(url, args, end), args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--interval", type=int, default=150, help="seconds between readings")
    parser.add_argument("--minute-rollup-days", type=int, default=2)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--baseline-runs", type=int, default=5)
    parser.add_argument("--data-dir", type=Path, help="keep the cluster here (default: a temp dir)")
    parser.add_argument("--skip-load", action="store_true", help="measure a cluster loaded before")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="citytel-bench-", dir="/var/tmp") as tmp:
        root = args.data_dir or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)
        with LocalPostgres(root / "pg", fsync=False, settings=PG_SETTINGS) as pg:
            asyncio.run(run(pg.url, args))


if __name__ == "__main__":
    main()
