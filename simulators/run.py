"""Running a simulated city: its gateways publish the generator's stream over MQTT.

``Simulation`` drives one ``CityGenerator`` and one ``GatewayClient`` per gateway. Each
event of the stream is dispatched at its simulated time scaled by ``speed`` (1: real
time; 60: an hour a minute; 0: as fast as the broker acknowledges — backfill, where a
gateway's full queue holds the generator back). Faults go to the ground-truth file as
the stream passes their end.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self, TextIO

from devices.catalog import metrics_of
from simulators.city import CHICAGO_AREA, Area, SimGateway
from simulators.faults import Fault, write_ground_truth
from simulators.gateway import GatewayClient, Outgoing
from simulators.generator import CityGenerator, Event, Message
from simulators.progress import Progress
from simulators.protocols import ProtocolEncoder, encoder_for

log = logging.getLogger(__name__)


@dataclass(slots=True)
class SimulationStats:
    messages: int = 0
    """Telemetry messages the broker acknowledged (a duplicate counts twice)."""
    readings: int = 0
    values: int = 0
    generated: int = 0
    """Telemetry messages handed to the gateways."""
    backlog: int = 0
    """Messages queued or in flight, not yet acknowledged (as of the last update)."""
    faults: int = 0
    """Faults written to the ground truth."""


def aligned_now(interval_s: float) -> datetime:
    """Now, rounded down to a multiple of ``interval_s``."""
    now = time.time()
    return datetime.fromtimestamp(math.floor(now / interval_s) * interval_s, UTC)


class Simulation:
    """Publishes the city's readings every ``interval_s`` of simulated time from
    ``start`` (default: now) until ``end`` (default: forever)."""

    def __init__(
        self,
        city: list[SimGateway],
        *,
        host: str,
        port: int,
        seed: int = 1,
        interval_s: float = 10.0,
        speed: float = 1.0,
        start: datetime | None = None,
        end: datetime | None = None,
        prefix: str = "",
        binary: bool = False,
        fault_rate: float = 0.0,
        faults: Iterable[Fault] = (),
        ground_truth: Path | None = None,
        username: str | None = None,
        password: str | None = None,
        tls: bool = False,
        ca_file: str | None = None,
        progress: bool = False,
        in_flight: int = 16,
        area: Area = CHICAGO_AREA,
        connect_timeout_s: float = 15.0,
        protocol: str | None = None,
    ) -> None:
        self.city = city
        self.stats = SimulationStats()
        self.speed = speed
        self.generator = CityGenerator(
            city,
            start=start or aligned_now(interval_s),
            end=end,
            interval_s=interval_s,
            seed=seed,
            fault_rate=fault_rate,
            faults=faults,
            area=area,
        )
        self.gateways = {
            g.gateway_id: GatewayClient(
                g,
                host=host,
                port=port,
                prefix=prefix,
                binary=binary,
                username=username,
                password=password,
                tls=tls,
                ca_file=ca_file,
                in_flight=in_flight,
                on_acked=self._acked,
                protocol=_encoder(protocol, g, prefix),
            )
            for g in city
        }
        self._ground_truth_path = ground_truth
        self._ground_truth: TextIO | None = None
        self._progress = progress
        self._connect_timeout = connect_timeout_s
        self._task: asyncio.Task[None] | None = None
        self.done = asyncio.Event()
        """Set when a range has been generated and every message acknowledged."""

    def _acked(self, out: Outgoing) -> None:
        self.stats.messages += 1
        self.stats.readings += out.readings
        self.stats.values += out.values

    @property
    def backlog(self) -> int:
        return sum(g.backlog for g in self.gateways.values())

    async def __aenter__(self) -> Self:
        if self._ground_truth_path is not None:
            self._ground_truth = self._ground_truth_path.open("w", encoding="utf-8")
        for g in self.gateways.values():
            g.start()
        try:
            await asyncio.wait_for(
                asyncio.gather(*(g.until_connected() for g in self.gateways.values())),
                self._connect_timeout,
            )
        except TimeoutError:
            await self._close_gateways()
            raise ConnectionError(
                f"simulated gateways could not connect within {self._connect_timeout:g} s"
            ) from None
        except BaseException:
            await self._close_gateways()
            raise
        self._task = asyncio.create_task(self._run(), name="citytel-simulate")
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._write_faults(self.generator.ended_faults())
        if not self.done.is_set():
            self._write_faults(self.generator.truncated_faults())
        if self._ground_truth is not None:
            self._ground_truth.close()
        await self._close_gateways()

    async def _close_gateways(self) -> None:
        await asyncio.gather(*(g.close() for g in self.gateways.values()))

    async def wait(self) -> None:
        """Until the range is published and acknowledged (``end``), or forever."""
        assert self._task is not None
        await asyncio.shield(self._task)

    def _write_faults(self, faults: list[Fault]) -> None:
        if faults and self._ground_truth is not None:
            self.stats.faults += write_ground_truth(faults, self._ground_truth)
            self._ground_truth.flush()

    async def _run(self) -> None:
        gen = self.generator
        total = None if gen.n_ticks is None else gen.n_ticks * gen.interval_ms / 1000
        progress = Progress(total_s=total) if self._progress else None
        backfill = self.speed <= 0
        collecting = gc.isenabled()
        if backfill:
            # Each tick makes a reading object per device, none of them cyclic: left on,
            # the cyclic collector would traverse every one of them again and again (a
            # third of the run's CPU time). Collect every 2 s instead.
            gc.disable()
        try:
            await self._dispatch(gen.events(), backfill, progress, total)
        finally:
            if collecting:
                gc.enable()

    async def _dispatch(
        self,
        events: Iterator[Event],
        backfill: bool,
        progress: Progress | None,
        total: float | None,
    ) -> None:
        gen = self.generator
        loop = asyncio.get_running_loop()
        wall0, sim0 = loop.time(), gen.start_ms
        collect_at = wall0 + 2.0
        n = 0
        for event in events:
            at = event.published_at if isinstance(event, Message) else event.at
            if not backfill:
                delay = wall0 + (at - sim0) / 1000 / self.speed - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            client = self.gateways[event.gateway_id]
            if isinstance(event, Message):
                client.enqueue(client.encode(event.telemetry(), event.values))
                self.stats.generated += 1
                n += 1
                if backfill:
                    await client.room()
                    if n % 32 == 0:
                        await asyncio.sleep(0)  # let acknowledgements in
                    if loop.time() >= collect_at:
                        gc.collect()
                        collect_at = loop.time() + 2.0
            elif event.online:
                client.go_online()
            else:
                await client.go_offline()
            self._write_faults(gen.ended_faults())
            if progress is not None and progress.due():
                self.stats.backlog = self.backlog
                progress.update((at - sim0) / 1000, self._figures())
        while self.backlog:
            await asyncio.sleep(0.02)
            if progress is not None:
                self.stats.backlog = self.backlog
                progress.update(total or 0, self._figures())
        self._write_faults(gen.ended_faults())
        self.stats.backlog = 0
        if progress is not None:
            progress.update(total or 0, self._figures(), force=True)
            progress.close()
        self.done.set()

    def _figures(self) -> tuple[int, int, int, int]:
        s = self.stats
        return s.messages, s.readings, s.values, s.backlog


def _encoder(protocol: str | None, gateway: SimGateway, prefix: str) -> ProtocolEncoder | None:
    """The gateway's encoder in another vendor's protocol, or None (contract v1)."""
    if protocol is None:
        return None
    devices = {d.device_id: [m.name for m in metrics_of(d.kind)] for d in gateway.devices}
    return encoder_for(protocol, gateway.gateway_id, devices, prefix=prefix)
