"""Running a simulated city: every gateway publishes its devices' readings each interval."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self

import numpy as np

from devices.contract import Reading
from simulators.city import SimGateway
from simulators.gateway import GatewaySimulator
from simulators.models import MODELS, DeviceState

log = logging.getLogger(__name__)


@dataclass(slots=True)
class SimulationStats:
    messages: int = 0
    readings: int = 0
    values: int = 0


class Simulation:
    """Publishes the city's readings at ``interval_s`` of simulated time, until stopped.

    ``speed`` is simulated seconds per wall-clock second (1 = real time). With ``start``
    in the past and ``stop`` set, it replays that range as fast as ``speed`` allows.
    """

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
        stop: datetime | None = None,
        prefix: str = "",
        binary: bool = False,
    ) -> None:
        self.city = city
        self.stats = SimulationStats()
        self._interval = interval_s
        self._speed = speed
        self._start = start
        self._stop = stop
        self._rng = np.random.default_rng(seed)
        self._gateways = [
            GatewaySimulator(g, host=host, port=port, prefix=prefix, binary=binary) for g in city
        ]
        self._states = {d.device_id: DeviceState() for g in city for d in g.devices}
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        for g in self._gateways:
            await g.__aenter__()
        self._task = asyncio.create_task(self._run(), name="citytel-simulate")
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for g in self._gateways:
            await g.__aexit__(None, None, None)

    async def wait(self) -> None:
        """Until the range is replayed (``stop``), or forever."""
        assert self._task is not None
        await asyncio.shield(self._task)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        sim = self._start or datetime.now(UTC)
        wall0, sim0 = loop.time(), sim
        while self._stop is None or sim < self._stop:
            await asyncio.gather(*(self._publish(g, sim) for g in self._gateways))
            sim += timedelta(seconds=self._interval)
            due = wall0 + (sim - sim0).total_seconds() / self._speed
            await asyncio.sleep(max(0.0, due - loop.time()))

    async def _publish(self, g: GatewaySimulator, when: datetime) -> None:
        ms = int(when.timestamp() * 1000)
        readings = []
        for d in g.gateway.devices:
            metrics = MODELS[d.kind](d, when, self._states[d.device_id], self._rng, self._interval)
            readings.append(Reading(d.device_id, ms, metrics))
        topic_name, payload = g.encode(readings, when)
        await g.publish(topic_name, payload)
        self.stats.messages += 1
        self.stats.readings += len(readings)
        self.stats.values += sum(len(r.metrics) for r in readings)
