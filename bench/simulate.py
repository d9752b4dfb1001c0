"""Simulator backfill rate to a real local broker, against the per-device baseline.

    python -m bench.simulate [--hours 2] [--baseline-ticks 6]
        [--streetlights 20000 --environment 500 --traffic 1000 --gateways 200]

Starts its own Mosquitto, then, in this one process, measures:
  1. ``citytel simulate --backfill``'s path: ``Simulation`` (NumPy, vectorised over the
     devices of a kind) publishing ``--hours`` of readings at a 60 s interval, as fast as
     the broker acknowledges (QoS 1), one MQTT client per gateway;
  2. the baseline: the per-device Python models the simulator had before (one call per
     device per reading, copied below from commit 0990840), published by the same
     gateway clients the same way, for ``--baseline-ticks`` intervals;
  3. and 4. the same two generators without publishing (built and encoded to JSON), to
     show what the broker's side costs.
A value is one metric of one reading. Nothing subscribes: the broker acknowledges and
drops the messages, so this measures the simulator, not an ingester.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import msgspec
import numpy as np

from citytel.local import LocalMosquitto
from devices.catalog import Kind
from devices.contract import Reading, Telemetry
from simulators.city import SimDevice, SimGateway, build_city
from simulators.gateway import GatewayClient, Outgoing
from simulators.generator import CityGenerator
from simulators.run import Simulation

START = datetime(2025, 11, 17, tzinfo=UTC)
INTERVAL_S = 60.0

# -- the baseline: the per-device models as of commit 0990840 ------------------------------

CITY_TZ = ZoneInfo("America/Chicago")


def _sun_elevation_deg(when: datetime, latitude: float, longitude: float) -> float:
    utc = when.astimezone(UTC)
    day = utc.timetuple().tm_yday
    hours = utc.hour + utc.minute / 60 + utc.second / 3600
    gamma = 2 * math.pi / 365 * (day - 1 + (hours - 12) / 24)
    decl = (
        0.006918
        - 0.399912 * math.cos(gamma)
        + 0.070257 * math.sin(gamma)
        - 0.006758 * math.cos(2 * gamma)
        + 0.000907 * math.sin(2 * gamma)
        - 0.002697 * math.cos(3 * gamma)
        + 0.00148 * math.sin(3 * gamma)
    )
    eqtime = 229.18 * (
        0.000075
        + 0.001868 * math.cos(gamma)
        - 0.032077 * math.sin(gamma)
        - 0.014615 * math.cos(2 * gamma)
        - 0.040849 * math.sin(2 * gamma)
    )
    solar_minutes = hours * 60 + eqtime + 4 * longitude
    hour_angle = math.radians(solar_minutes / 4 - 180)
    lat = math.radians(latitude)
    cos_zenith = math.sin(lat) * math.sin(decl) + math.cos(lat) * math.cos(decl) * math.cos(
        hour_angle
    )
    return 90 - math.degrees(math.acos(max(-1.0, min(1.0, cos_zenith))))


def _rush(hour: float, weekday: bool) -> float:
    if not weekday:
        return 0.5 * math.exp(-(((hour - 14) / 4) ** 2))
    return math.exp(-(((hour - 8) / 1.3) ** 2)) + 0.9 * math.exp(-(((hour - 17.5) / 1.6) ** 2))


def _streetlight(
    d: SimDevice, when: datetime, energy: list[float], rng: np.random.Generator, dt_s: float
) -> dict[str, float]:
    elevation = _sun_elevation_deg(when, d.latitude, d.longitude)
    on = elevation < -0.833
    local = when.astimezone(CITY_TZ)
    dim = (100.0 if local.hour >= 12 else 50.0) if on else 0.0
    power = d.rating_w * dim / 100 * (1 + rng.normal(0, 0.01)) if on else 0.4
    energy[0] += power * dt_s / 3600
    voltage = 120 + rng.normal(0, 1.0)
    lux = max(0.0, 100_000 * math.sin(math.radians(max(elevation, 0))) + rng.normal(0, 2) + 3)
    return {
        "power_w": round(power, 2),
        "energy_wh": round(energy[0], 3),
        "lamp_on": float(on),
        "dim_pct": dim,
        "voltage_v": round(voltage, 2),
        "current_a": round(power / voltage, 4),
        "ambient_lux": round(lux, 1),
    }


def _environment(
    d: SimDevice, when: datetime, energy: list[float], rng: np.random.Generator, dt_s: float
) -> dict[str, float]:
    local = when.astimezone(CITY_TZ)
    hour = local.hour + local.minute / 60
    season = -math.cos(2 * math.pi * (local.timetuple().tm_yday - 20) / 365)
    temp = 10 + 14 * season + 5 * math.cos(2 * math.pi * (hour - 15) / 24) + rng.normal(0, 0.3)
    rush = _rush(hour, local.weekday() < 5)
    pm25 = 7 + 10 * rush + abs(rng.normal(0, 1.5))
    return {
        "temperature_c": round(temp, 2),
        "humidity_pct": round(min(100, max(5, 65 - 1.5 * (temp - 10) + rng.normal(0, 2))), 1),
        "pressure_hpa": round(
            1013 + 6 * math.sin(when.timestamp() / 86400 / 3) + rng.normal(0, 0.3), 1
        ),
        "pm2_5_ugm3": round(pm25, 1),
        "pm10_ugm3": round(1.7 * pm25 + abs(rng.normal(0, 2)), 1),
        "no2_ppb": round(12 + 25 * rush + abs(rng.normal(0, 2)), 1),
        "o3_ppb": round(
            max(0, 20 + 25 * math.exp(-(((hour - 15) / 3) ** 2)) - 8 * rush + rng.normal(0, 2)), 1
        ),
        "noise_dba": round(48 + 20 * rush + rng.normal(0, 1.5), 1),
    }


def _traffic(
    d: SimDevice, when: datetime, energy: list[float], rng: np.random.Generator, dt_s: float
) -> dict[str, float]:
    local = when.astimezone(CITY_TZ)
    rush = _rush(local.hour + local.minute / 60, local.weekday() < 5)
    occupancy = min(95.0, max(0.0, 3 + 45 * rush + rng.normal(0, 2)))
    volume = max(0, round((5 + 60 * rush) * dt_s / 60 + rng.normal(0, 2)))
    speed = max(3.0, d.free_flow_kmh * (1 - 0.7 * occupancy / 100) + rng.normal(0, 2))
    return {
        "speed_kmh": round(speed, 1),
        "volume_veh": float(volume),
        "occupancy_pct": round(occupancy, 1),
    }


_MODELS = {Kind.STREETLIGHT: _streetlight, Kind.ENVIRONMENT: _environment, Kind.TRAFFIC: _traffic}


def per_device_messages(city: list[SimGateway], ticks: int) -> Iterator[Telemetry]:
    """The baseline stream: one Python model call per device per reading."""
    rng = np.random.default_rng(1)
    energy = {d.device_id: [0.0] for g in city for d in g.devices}
    for i in range(ticks):
        when = START + timedelta(seconds=i * INTERVAL_S)
        ms = int(when.timestamp() * 1000)
        for g in city:
            readings = [
                Reading(d.device_id, ms, _MODELS[d.kind](d, when, energy[d.device_id], rng, 60))
                for d in g.devices
            ]
            yield Telemetry(g.gateway_id, i, readings, ms)


def vectorised_messages(city: list[SimGateway], ticks: int) -> Iterator[Telemetry]:
    end = START + timedelta(seconds=ticks * INTERVAL_S)
    gen = CityGenerator(city, start=START, end=end, interval_s=INTERVAL_S, seed=1)
    for m in gen.messages():
        yield m.telemetry()


# -- measurements ----------------------------------------------------------------------------


def generate_only(messages: Iterator[Telemetry]) -> tuple[float, float, int, int]:
    """(seconds, CPU seconds, messages, values) to build and JSON-encode the stream."""
    encode = msgspec.json.Encoder().encode
    t0, c0 = time.perf_counter(), time.process_time()
    n = values = 0
    for m in messages:
        encode(m)
        n += 1
        values += sum(len(r.metrics) for r in m.readings)
    return time.perf_counter() - t0, time.process_time() - c0, n, values


async def simulate(
    city: list[SimGateway], port: int, hours: float
) -> tuple[float, float, int, int]:
    """``citytel simulate --backfill``: (seconds, CPU seconds, messages, values acknowledged)."""
    end = START + timedelta(hours=hours)
    async with Simulation(
        city,
        host="127.0.0.1",
        port=port,
        speed=0,
        start=START,
        end=end,
        interval_s=INTERVAL_S,
        prefix="vectorised/",
    ) as sim:
        t0, c0 = time.perf_counter(), time.process_time()
        await sim.wait()
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    return elapsed, cpu, sim.stats.messages, sim.stats.values


async def publish(
    city: list[SimGateway], port: int, messages: Iterator[Telemetry]
) -> tuple[float, float, int, int]:
    """The baseline stream through the same gateway clients, as fast as acknowledged."""
    acked = [0, 0]

    def count(out: Outgoing) -> None:
        acked[0] += 1
        acked[1] += out.values

    clients = {
        g.gateway_id: GatewayClient(
            g, host="127.0.0.1", port=port, prefix="per-device/", on_acked=count
        )
        for g in city
    }
    for c in clients.values():
        c.start()
    await asyncio.gather(*(c.until_connected() for c in clients.values()))
    t0, c0 = time.perf_counter(), time.process_time()
    for n, m in enumerate(messages):
        c = clients[m.gateway_id]
        c.enqueue(c.encode(m))
        await c.room()
        if n % 32 == 0:
            await asyncio.sleep(0)
    await asyncio.gather(*(c.settled() for c in clients.values()))
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    await asyncio.gather(*(c.close() for c in clients.values()))
    return elapsed, cpu, acked[0], acked[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=2.0, help="simulated range to backfill")
    parser.add_argument("--baseline-ticks", type=int, default=6)
    parser.add_argument("--streetlights", type=int, default=20_000)
    parser.add_argument("--environment", type=int, default=500)
    parser.add_argument("--traffic", type=int, default=1_000)
    parser.add_argument("--gateways", type=int, default=200)
    args = parser.parse_args()
    city = build_city(
        seed=1,
        streetlights=args.streetlights,
        environment=args.environment,
        traffic=args.traffic,
        gateways=args.gateways,
    )
    devices = sum(len(g.devices) for g in city)
    ticks = round(args.hours * 3600 / INTERVAL_S)
    print(
        f"machine: {os.cpu_count()} cores; city: {devices:,} devices under {len(city)} "
        f"gateways; a reading per device every {INTERVAL_S:g} s"
    )
    rows: list[tuple[str, float, float, int, int]] = []
    with tempfile.TemporaryDirectory() as tmp, LocalMosquitto(Path(tmp) / "mq") as broker:
        result = asyncio.run(simulate(city, broker.port, args.hours))
        rows.append(("simulator backfill to Mosquitto (vectorised)", *result))
        baseline = per_device_messages(city, args.baseline_ticks)
        result = asyncio.run(publish(city, broker.port, baseline))
        rows.append(("baseline: per-device Python models, same clients", *result))
    result = generate_only(vectorised_messages(city, min(ticks, 30)))
    rows.append(("vectorised, generate + encode only (no broker)", *result))
    result = generate_only(per_device_messages(city, args.baseline_ticks))
    rows.append(("per-device, generate + encode only (no broker)", *result))
    print(
        f"{'scenario':50} {'values/s':>10} {'messages/s':>10} {'values/CPU-s':>12} "
        f"{'values':>11} {'seconds':>7}"
    )
    for name, seconds, cpu, messages, values in rows:
        print(
            f"{name:50} {values / seconds:>10,.0f} {messages / seconds:>10,.0f} "
            f"{values / cpu:>12,.0f} {values:>11,} {seconds:>7.1f}"
        )
    rate = {name: values / seconds for name, seconds, _, _, values in rows}
    per_cpu = {name: values / cpu for name, _, cpu, _, values in rows}
    names = [r[0] for r in rows]
    print(
        f"ratio vectorised / per-device, to the broker: {rate[names[0]] / rate[names[1]]:.1f}x "
        f"in values/s, {per_cpu[names[0]] / per_cpu[names[1]]:.1f}x per CPU-second; "
        f"generation only: {rate[names[2]] / rate[names[3]]:.1f}x"
    )
    met = "met" if rate[names[0]] >= 3e5 else "NOT met"
    print(f"target >= 300,000 values/s to the broker: {met}")
    print(f"load average during the run: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
