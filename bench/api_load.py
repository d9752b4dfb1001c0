"""The API under 200 concurrent clients on cheap routes, against a bare ASGI baseline.

    python -m bench.api_load [--clients 200] [--requests 10]

Starts a PostgreSQL of its own (migrated, one reader key, empty tables) and two uvicorn
servers in processes of their own, each with the same settings: citytel's API, and a
baseline of a bare ASGI application that answers every request with a fixed JSON body
(no framework, no database). ``clients`` concurrent clients (one connection each) then
send ``requests`` requests each, in turn to the cheap routes:
  /healthz                 no database
  /problems/unavailable    no database, a path parameter, a response model
  /readyz                  one pooled connection, ``SELECT 1``
  /v1/gateways             key check and one query on an empty table
and the same number to the baseline. ``--max-in-flight`` sets the API's load-shedding
bound (default the API's own, 64; a large value turns shedding off). It prints p50 and
p99 per route, the answers by status (a 503 under overload is an answer, counted), and
the ratio citytel p99 / baseline p99. Target: p99 under 1 s for every route on an
otherwise idle machine.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from api.deps import Limits
from citytel.local import LocalPostgres, free_port, wait_for_port
from storage.database import connect
from storage.migrate import upgrade
from storage.queries import create_key

ROUTES = ("/healthz", "/problems/unavailable", "/readyz", "/v1/gateways")


async def baseline(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A bare ASGI application: every HTTP request gets the same small JSON body."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = b'{"status":"ok"}'
    headers = [(b"content-type", b"application/json"), (b"content-length", b"15")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def citytel_app() -> Any:
    """uvicorn's factory for citytel's API on ``CITYTEL_DATABASE_URL``."""
    import os

    from api.app import create_app
    from api.deps import Limits

    limits = Limits(max_in_flight=int(os.environ["BENCH_MAX_IN_FLIGHT"]))
    return create_app(database_url=os.environ["CITYTEL_DATABASE_URL"], limits=limits)


def _serve(target: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    factory = ["--factory"] if target.endswith("citytel_app") else []
    command = [sys.executable, "-m", "uvicorn", target, *factory, "--port", str(port)]
    command += ["--log-level", "warning", "--no-access-log"]
    process = subprocess.Popen(command, env=env)
    wait_for_port(port, timeout=30, process=process, what=target)
    return process


async def _client(
    port: int, routes: tuple[str, ...], n: int, offset: int, key: str, out: list[Any]
) -> None:
    """One client on one keep-alive connection, HTTP/1.1 by hand: a general client
    (httpx) spends more CPU per request than the server does, and would measure itself."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for i in range(n):
            route = routes[(offset + i) % len(routes)]
            request = f"GET {route} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {key}\r\n\r\n"
            start = time.perf_counter()
            writer.write(request.encode())
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.lower().split(b"\r\n")
                if line.startswith(b"content-length:")
            )
            await reader.readexactly(length)
            out.append((route, status, time.perf_counter() - start))
    finally:
        writer.close()
        await writer.wait_closed()


async def _load(port: int, routes: tuple[str, ...], clients: int, n: int, key: str) -> list[Any]:
    out: list[Any] = []
    async with asyncio.TaskGroup() as tasks:
        for c in range(clients):
            tasks.create_task(_client(port, routes, n, c, key, out))
    return out


def _pct(values: list[float], q: int) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[q - 1]
        if len(values) > 1
        else values[0]
    )


def _report(name: str, answers: list[Any]) -> dict[str, float]:
    p99: dict[str, float] = {}
    for route in sorted({r for r, _, _ in answers}):
        times = [t for r, _, t in answers if r == route]
        statuses = Counter(s for r, s, _ in answers if r == route)
        p99[route] = _pct(times, 99)
        print(
            f"{name:8} {route:24} n={len(times):5}  p50 {_pct(times, 50) * 1000:7.1f} ms"
            f"  p99 {p99[route] * 1000:7.1f} ms  statuses {dict(statuses)}"
        )
    shed = sum(s == 503 for _, s, _ in answers)
    if shed:
        print(f"{name:8} shed (503 + Retry-After): {shed} of {len(answers)}")
    everything = [t for *_, t in answers]
    p99["all"] = _pct(everything, 99)
    print(
        f"{name:8} {'all':24} n={len(everything):5}  p50 {_pct(everything, 50) * 1000:7.1f} ms"
        f"  p99 {p99['all'] * 1000:7.1f} ms"
    )
    return p99


async def _key(url: str) -> str:
    conn = await connect(url, autocommit=True)
    try:
        await upgrade(conn)
        return (await create_key(conn, role="reader", name="bench")).key
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--requests", type=int, default=10, help="per client")
    parser.add_argument(
        "--max-in-flight",
        type=int,
        default=Limits().max_in_flight,
        help="the API's load-shedding bound (a large value: no shedding)",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="citytel-api-load-") as tmp:
        Path(tmp).chmod(0o755)
        with LocalPostgres(Path(tmp) / "pg", fsync=False) as pg:
            key = asyncio.run(_key(pg.url))
            env = {
                "CITYTEL_DATABASE_URL": pg.url,
                "BENCH_MAX_IN_FLIGHT": str(args.max_in_flight),
                "PATH": "/usr/bin:/bin",
            }
            ports = {"citytel": free_port(), "baseline": free_port()}
            servers = [
                _serve("bench.api_load:citytel_app", ports["citytel"], env),
                _serve("bench.api_load:baseline", ports["baseline"], env),
            ]
            try:
                results = {}
                for name, routes in (("baseline", ("/",)), ("citytel", ROUTES)):
                    port = ports[name]
                    asyncio.run(_load(port, routes, 10, 2, key))  # warm up
                    start = time.perf_counter()
                    answers = asyncio.run(_load(port, routes, args.clients, args.requests, key))
                    elapsed = time.perf_counter() - start
                    print(f"{name}: {len(answers)} answers in {elapsed:.1f} s "
                          f"({len(answers) / elapsed:.0f} requests/s)")  # fmt: skip
                    results[name] = _report(name, answers)
            finally:
                for server in servers:
                    server.terminate()
                    server.wait(timeout=10)
    worst = max(v for k, v in results["citytel"].items() if k != "all")
    print(
        f"ratio citytel p99 (worst route) / baseline p99: "
        f"{worst / results['baseline']['all']:.1f}; target p99 < 1 s: "
        f"{'met' if worst < 1 else 'NOT met'} ({worst * 1000:.0f} ms)"
    )


if __name__ == "__main__":
    main()
