"""The console on a city of 300,000 devices: map data route latency and map render time.

    python -m bench.console [--devices 300000] [--runs 20] [--browser-runs 5]

Loads ``devices`` devices (under 300 gateways, 10 % of them offline) and 3,000 open
anomaly episodes into a fresh PostgreSQL cluster, then:

* ``GET /v1/map`` (every device as parallel arrays, made by PostgreSQL) through the API
  in process (over ASGI: key check, query, response), ``--runs`` times, every other time
  after dropping the kept answers (as a change does): p50 and p95 of each;
  baseline: the same devices through ``GET /v1/devices`` in pages of 1,000 (what a client
  had to do before), ``--baseline-runs`` times; ratio baseline p50 / map p50.
* alert latency: ``--alerts`` episodes opened one commit at a time through the
  ingester's episode writer, each notifying a local webhook receiver through the
  dispatcher (woken by NOTIFY at commit): commit to receipt, p50 and p99 (target p99 < 1 s);
  baseline: the same dispatcher polling the outbox every second without NOTIFY.
* the console's map page in headless Chromium (Debian's, driven by Playwright) against
  the API served by uvicorn: time from navigation start to the first map drawn, and to
  interactive (the main thread free again after it), ``--browser-runs`` times; the ratio
  printed is the figure over the 2 s target.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvicorn

from api.app import create_app
from citytel.alerts import AlertDispatcher
from citytel.local import LocalPostgres
from storage import alerts
from storage.database import connect
from storage.episodes import EpisodeChange, write_episodes
from storage.migrate import upgrade
from storage.queries import create_key

GATEWAYS = 300
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


async def load(url: str, devices: int) -> str:
    """The city; an admin key."""
    rng = np.random.default_rng(7)
    conn = await connect(url, autocommit=True)
    try:
        await upgrade(conn)
        async with conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO gateways (gateway_id, status, status_at, last_seen)"
                " VALUES (%s, %s, now(), now())",
                [(f"gw-{g:03d}", "offline" if g % 10 == 0 else "online") for g in range(GATEWAYS)],
            )
        kinds = np.array(["streetlight", "environment", "traffic"])[
            rng.choice(3, size=devices, p=[0.8, 0.1, 0.1])
        ]
        lat = 41.65 + 0.35 * rng.random(devices)
        lon = -87.85 + 0.3 * rng.random(devices)
        buf = io.StringIO()
        for i in range(devices):
            buf.write(f"{kinds[i][:2]}-{i:06d}\t{kinds[i]}\t{1 + i % GATEWAYS}\t")
            buf.write(f"{lat[i]:.6f}\t{lon[i]:.6f}\tt\n")
        async with conn.cursor() as cur:
            async with cur.copy(
                "COPY devices (device_id, kind, gateway, latitude, longitude, announced) FROM STDIN"
            ) as copy:
                await copy.write(buf.getvalue())
            await cur.execute(
                "INSERT INTO episodes (device, detector, started_at, peak_score, severity)"
                " SELECT id, 'bench', now() - id * interval '1 s', 0.9,"
                " (ARRAY['low', 'medium', 'high'])[1 + id %% 3]"
                " FROM devices WHERE id %% (%s) = 0",
                (max(1, devices // 3000),),
            )
            await cur.execute("ANALYZE")
        return (await create_key(conn, role="admin", name="bench")).key
    finally:
        await conn.close()


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


async def api_figures(url: str, key: str, args: argparse.Namespace) -> dict[str, list[float]]:
    app = create_app(database_url=url)
    headers = {"Authorization": f"Bearer {key}"}
    out: dict[str, list[float]] = {"map": [], "cold": [], "pages": []}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://citytel", headers=headers
        ) as client,
    ):
        for i in range(args.runs + 2):
            if i % 2 == 0 and hasattr(app.state, "map_cache"):
                app.state.map_cache.clear()  # as after a change: the query runs
            t = time.perf_counter()
            r = await client.get("/v1/map")
            elapsed = time.perf_counter() - t
            assert r.status_code == 200 and r.json()["count"] == args.devices
            if i >= 2:  # two warm-up runs
                out["cold" if i % 2 == 0 else "map"].append(elapsed)
        for _ in range(args.baseline_runs):
            t = time.perf_counter()
            seen, cursor = 0, None
            while True:
                params: dict[str, Any] = {"limit": 1000} | ({"cursor": cursor} if cursor else {})
                page = (await client.get("/v1/devices", params=params)).json()
                seen += len(page["items"])
                if not (cursor := page["next_cursor"]):
                    break
            out["pages"].append(time.perf_counter() - t)
            assert seen == args.devices
    return out


async def alert_latencies(url: str, n: int, *, listen: bool, first: int) -> list[float]:
    """Commit-to-receipt seconds of ``n`` notifications (episodes of devices first...)."""
    arrived: dict[int, float] = {}
    got = asyncio.Event()

    async def receive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1]) for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )  # fmt: skip
        body = json.loads(await reader.readexactly(length))
        arrived[body["id"]] = time.monotonic()
        got.set()
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(receive, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    conn = await connect(url, autocommit=True)
    detector = f"bench_{'notify' if listen else 'poll'}"
    endpoint = await alerts.create_endpoint(conn, url=f"http://127.0.0.1:{port}/hook")
    rule = dict.fromkeys(("kind", "metric", "min_severity", "gateway"))
    box = dict.fromkeys(("min_lon", "min_lat", "max_lon", "max_lat"))
    await alerts.create_rule(
        conn,
        {**rule, **box, "detector": detector, "changes": ["opened"], "endpoint": endpoint["id"]},
    )
    writer = await connect(url)
    out: list[float] = []
    try:
        async with server, AlertDispatcher(database_url=url, poll_s=1.0, listen=listen):
            for i in range(n):
                t_us = int(time.time() * 1e6)
                change = EpisodeChange(first + i, None, detector, True, t_us, t_us, 0.9, 1.0)
                await write_episodes(writer, [change])
                committed = time.monotonic()
                cur = await conn.execute(
                    "SELECT max(id) FROM episodes WHERE detector = %s", (detector,)
                )
                (episode,) = await cur.fetchone() or (None,)
                while episode not in arrived:
                    await asyncio.wait_for(got.wait(), timeout=30)
                    got.clear()
                out.append(arrived[episode] - committed)
    finally:
        await writer.close()
        await conn.close()
    return out


def browser_figures(url: str, key: str, args: argparse.Namespace) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(database_url=url), port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    out: dict[str, list[float]] = {"rendered": [], "interactive": []}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
            for _ in range(args.browser_runs):
                context = browser.new_context(base_url=f"http://127.0.0.1:{port}")
                assert context.request.post("/v1/session", data={"key": key}).ok
                page = context.new_page()
                page.goto("/#/map")
                page.wait_for_function(
                    "() => window.citytelMetrics && window.citytelMetrics.mapInteractiveMs",
                    timeout=60_000,
                )
                m = page.evaluate("window.citytelMetrics")
                status = page.locator("#map-status").inner_text()
                assert f"{args.devices:,} devices" in status, status
                out["rendered"].append(m["mapRenderedMs"] / 1000)
                out["interactive"].append(m["mapInteractiveMs"] / 1000)
                context.close()
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    return out


def report(
    api: dict[str, list[float]], web: dict[str, list[float]], args: argparse.Namespace
) -> None:
    ms = 1000
    print(f"city: {args.devices:,} devices, {GATEWAYS} gateways")
    if api.get("alerts"):
        a50, a99 = pct(api["alerts"], 50) * ms, pct(api["alerts"], 99) * ms
        b50, b99 = pct(api["alerts_poll"], 50) * ms, pct(api["alerts_poll"], 99) * ms
        print(f"alert commit->webhook    p50 {a50:8.1f} ms  p99 {a99:8.1f} ms  (target p99 < 1 s)")
        print(f"baseline, polling 1 s    p50 {b50:8.1f} ms  p99 {b99:8.1f} ms"
              f"  ratio {b50 / a50:5.1f}x")  # fmt: skip
    mp50, mp95 = pct(api["map"], 50) * ms, pct(api["map"], 95) * ms
    bp50 = statistics.median(api["pages"]) * ms
    cp50, cp95 = pct(api["cold"], 50) * ms, pct(api["cold"], 95) * ms
    print(f"GET /v1/map, kept answer p50 {mp50:8.1f} ms  p95 {mp95:8.1f} ms  (target p95 < 200 ms)")
    print(f"GET /v1/map, query runs  p50 {cp50:8.1f} ms  p95 {cp95:8.1f} ms")
    print(f"baseline /v1/devices x{args.devices // 1000 + 1} pages p50 {bp50:8.1f} ms"
          f"  ratio {bp50 / cp50:5.1f}x over the query,"
          f" {bp50 / mp50:5.1f}x over a kept answer")  # fmt: skip
    for name in ("rendered", "interactive"):
        p50, worst = statistics.median(web[name]), max(web[name])
        print(f"map {name:<12} p50 {p50 * ms:8.1f} ms  max {worst * ms:8.1f} ms"
              f"  / 2 s target {p50 / 2:5.2f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--devices", type=int, default=300_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--baseline-runs", type=int, default=3)
    parser.add_argument("--browser-runs", type=int, default=5)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--alerts", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="citytel-bench-", dir="/var/tmp") as tmp:
        Path(tmp).chmod(0o755)
        with LocalPostgres(Path(tmp) / "pg", fsync=False) as pg:
            run(pg.url, args)


def run(url: str, args: argparse.Namespace) -> None:
    key = asyncio.run(load(url, args.devices))
    api = asyncio.run(api_figures(url, key, args))
    if args.alerts:
        api["alerts"] = asyncio.run(alert_latencies(url, args.alerts, listen=True, first=1))
        api["alerts_poll"] = asyncio.run(
            alert_latencies(url, args.alerts // 4 or 1, listen=False, first=args.alerts + 1)
        )
    web = browser_figures(url, key, args)
    report(api, web, args)


if __name__ == "__main__":
    main()
