"""``citytel simulate``: its arguments and what they mean (citytel/cli.py wires it in).

Modes:

- live (no range): real time from now, forever (Ctrl-C stops);
- a range (``--start``, ``--end``, ``--days``; ``--end`` defaults to now and the range
  to one day): backfilled as fast as the broker acknowledges, or at ``--speed``;
- ``--speed N`` without a range replays the last ``--days`` (1) at N x real time.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from simulators.city import build_city
from simulators.protocols import PROTOCOLS
from simulators.run import Simulation, aligned_now

log = logging.getLogger("simulators")

SIZES = ("streetlights", "environment", "traffic", "gateways")


class BrokerLike(Protocol):
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def username(self) -> str | None: ...
    @property
    def password(self) -> str | None: ...
    @property
    def tls(self) -> bool: ...
    @property
    def ca_file(self) -> str | None: ...


class SimDefaults(Protocol):
    sim_streetlights: int
    sim_environment: int
    sim_traffic: int
    sim_gateways: int
    sim_interval_s: float
    sim_seed: int
    sim_fault_rate: float


def _when(text: str) -> datetime:
    """ISO 8601; ``Z`` allowed; without an offset: UTC."""
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def add_arguments(p: argparse.ArgumentParser) -> None:
    size = p.add_argument_group("the city (defaults: CITYTEL_SIM_*)")
    for name in SIZES:
        size.add_argument(f"--{name}", type=int, metavar="N", help=f"number of {name}")
    size.add_argument("--seed", type=int, help="same seed, same city, readings and faults")
    mode = p.add_argument_group("time")
    mode.add_argument("--interval", type=float, metavar="S", help="seconds between readings")
    mode.add_argument(
        "--speed",
        type=float,
        metavar="X",
        help="simulated seconds per second (1: real time; 60: an hour a minute; "
        "0: as fast as the broker takes it). Default: 1 live, 0 for a range",
    )
    mode.add_argument("--start", type=_when, metavar="TIME", help="range start (ISO 8601)")
    mode.add_argument("--end", type=_when, metavar="TIME", help="range end (default: now)")
    mode.add_argument("--days", type=float, metavar="D", help="range length (default 1)")
    mode.add_argument(
        "--backfill",
        action="store_true",
        help="generate a range (default: the last day) as fast as the broker takes it",
    )
    faults = p.add_argument_group("faults")
    faults.add_argument(
        "--fault-rate",
        type=float,
        metavar="R",
        help="faults per device per day and per gateway per day (default "
        "CITYTEL_SIM_FAULT_RATE, 0)",
    )
    faults.add_argument(
        "--ground-truth", type=Path, metavar="FILE", help="write injected faults (JSON Lines)"
    )
    p.add_argument("--msgpack", action="store_true", help="publish MessagePack, not JSON")
    p.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        help="publish in another vendor's format instead of contract v1 (docs/simulators.md)",
    )


def plan(
    args: argparse.Namespace, defaults: SimDefaults, now: datetime | None = None
) -> tuple[datetime | None, datetime | None, float]:
    """(start, end, speed) from the arguments: ``end`` None means live."""
    interval = args.interval or defaults.sim_interval_s
    ranged = any(x is not None for x in (args.start, args.end, args.days)) or args.backfill
    if not ranged and (args.speed is None or args.speed == 1):
        return None, None, 1.0
    if args.start is not None and args.end is not None and args.days is not None:
        raise SystemExit("citytel simulate: give two of --start, --end, --days")
    days = timedelta(days=args.days if args.days is not None else 1)
    end = args.end
    if end is None:
        end = args.start + days if args.start is not None and args.days else None
    end = end or (now or aligned_now(interval))
    start = args.start or end - days
    if not start < end:
        raise SystemExit(f"citytel simulate: the range is empty ({start} .. {end})")
    speed = 0.0 if args.backfill else (args.speed if args.speed is not None else 0.0)
    if speed < 0 or not math.isfinite(speed):
        raise SystemExit("citytel simulate: --speed must be 0 or more")
    return start, end, speed


def simulate(
    args: argparse.Namespace, *, broker: BrokerLike, prefix: str, defaults: SimDefaults
) -> int:
    """Run ``citytel simulate``; returns the exit status."""
    sizes = {
        n: getattr(args, n) if getattr(args, n) is not None else getattr(defaults, f"sim_{n}")
        for n in SIZES
    }
    seed = args.seed if args.seed is not None else defaults.sim_seed
    interval = args.interval or defaults.sim_interval_s
    rate = args.fault_rate if args.fault_rate is not None else defaults.sim_fault_rate
    start, end, speed = plan(args, defaults)
    city = build_city(seed=seed, **sizes)
    devices = sum(len(g.devices) for g in city)
    log.info(
        "simulating %d devices under %d gateways, seed %d, a reading every %g s, %s, "
        "fault rate %g/day%s",
        devices,
        len(city),
        seed,
        interval,
        "live"
        if end is None
        else f"{start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC "
        + ("as fast as the broker takes it" if speed == 0 else f"at {speed:g}x"),
        rate,
        f", ground truth to {args.ground_truth}" if args.ground_truth else "",
    )

    async def run() -> Simulation:
        async with Simulation(
            city,
            host=broker.host,
            port=broker.port,
            username=broker.username,
            password=broker.password,
            tls=broker.tls,
            ca_file=broker.ca_file,
            seed=seed,
            interval_s=interval,
            speed=speed,
            start=start,
            end=end,
            prefix=prefix,
            binary=args.msgpack,
            protocol=args.protocol,
            fault_rate=rate,
            ground_truth=args.ground_truth,
            progress=True,
        ) as sim:
            await sim.wait()
        return sim

    t0 = time.monotonic()
    try:
        sim = asyncio.run(run())
    except ConnectionError as exc:
        log.error("%s", exc)
        return 1
    except KeyboardInterrupt:
        return 130
    elapsed = time.monotonic() - t0
    s = sim.stats
    print(
        f"published {s.messages:,} messages, {s.readings:,} readings, {s.values:,} values "
        f"in {elapsed:.1f} s ({s.values / elapsed:,.0f} values/s); "
        f"{s.faults} faults in the ground truth",
        file=sys.stderr,
    )
    return 0
