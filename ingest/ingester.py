"""The ingester: MQTT deliveries in, committed rows and dead letters out, acks last.

Each batch is decoded, validated, and written in one transaction; only then are its
messages acknowledged to the broker. If the database is down the batch is retried with
backoff and nothing is acknowledged, so the broker stops sending once ``receive_maximum``
messages are unacknowledged and queues the rest: memory stays bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar

import numpy as np
import psycopg
from psycopg.rows import TupleRow

from devices.columns import DeadLetterRow, EpisodeChange, ValueColumns
from devices.contract import TELEMETRY, DeviceInfo, subscriptions, topic
from devices.errors import CitytelError, StorageError, StorageUnavailable
from devices.tables import TABLES, Tables
from ingest.aggregate import Aggregator, Prepared
from ingest.batch import Batch, BatchBuilder, Columns
from ingest.config import Broker, IngesterConfig
from ingest.decode import Decoder
from ingest.detect import Detection
from ingest.formats.mapping import load_mapping
from ingest.formats.router import Router
from ingest.formats.sparkplug import host_state
from ingest.metrics import commit_histogram, detect_histogram
from ingest.mqtt import Delivery, Subscription
from ingest.reasons import Reason
from ingest.stats import IngestStats
from processing.state import pack, unpack
from storage.catalog import newer_catalog
from storage.checkpoints import load_checkpoint, save_checkpoint
from storage.database import Mode, connect, current_mode, transaction
from storage.episodes import write_episodes
from storage.registry import DeviceUpsert, Registry
from storage.writer import WriteResult, write_batch, write_dead_letters

log = logging.getLogger(__name__)

T = TypeVar("T")


class Overloaded(CitytelError):
    """The ingester holds as much as it may: a submitted message must wait (HTTP 429)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one submitted message."""

    values: int
    """Values stored."""
    duplicate: bool
    """Its identity was stored before: nothing of it stored again."""
    dead_letters: list[tuple[str, str]]
    """(reason, detail) of each part refused."""


class Ingester:
    """Runs while used as an async context manager; ``stats`` counts what it did."""

    def __init__(
        self, *, database_url: str, broker: Broker, config: IngesterConfig | None = None
    ) -> None:
        c = config or IngesterConfig()
        self._config = c
        self._formats = self._router(TABLES) if c.formats else None
        topics = subscriptions(prefix=c.topic_prefix)
        if self._formats is not None:  # those under our own root are subscribed already
            ours = topics[0].removesuffix("#")
            topics += [f for f in self._formats.subscriptions() if not f.startswith(ours)]
        if c.share_group:
            topics = [f"$share/{c.share_group}/{t}" for t in topics]
        self._database_url = database_url
        self._limits = c.limits
        self._decoder = Decoder(limits=c.limits)
        self._prefix = c.topic_prefix
        self._batch_max_messages = c.batch_max_messages
        self._batch_max_wait_s = c.batch_max_wait_s
        self._retry_max_s = c.retry_max_s
        self._shutdown_grace_s = c.shutdown_grace_s
        self._max_attempts = c.max_attempts
        self._claim = c.unknown_devices == "claim"
        self._subscription = Subscription(
            broker=broker,
            client_id=c.client_id,
            topics=topics,
            session_expiry_s=c.session_expiry_s,
            receive_maximum=c.receive_maximum,
            max_held_bytes=c.max_held_bytes,
            wake_at=min(c.batch_max_messages, c.receive_maximum // 2),
            **self._sparkplug_state(c),
        )
        self._registry = Registry()
        self._aggregator = Aggregator(widths_s=c.rollup_widths_s, lateness_s=c.allowed_lateness_s)
        self._detection = Detection(timezone=c.timezone) if c.detect else None
        self._checkpoint_name = c.client_id
        self._every = {
            "silence": c.dropout_check_s,
            "checkpoint": c.checkpoint_s,
            "catalog": c.catalog_poll_s,
        }
        self._due = {"silence": 0.0, "checkpoint": 0.0, "catalog": 0.0}
        self._tables = TABLES
        self._conn: psycopg.AsyncConnection[TupleRow] | None = None
        self._task: asyncio.Task[None] | None = None
        self._stack = contextlib.AsyncExitStack()
        self._submitted: dict[int, asyncio.Future[Outcome]] = {}
        self._retained_seen: set[int] = set()
        self._last_submitted = 0
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="citytel-kernels")
        self._timezone = c.timezone
        self._holding = 0
        self.stats = IngestStats()
        self.commit_seconds = commit_histogram()
        self.detect_seconds = detect_histogram()
        self.mode: Mode | None = None

    def _router(self, tables: Tables) -> Router:
        c = self._config
        mapping = load_mapping(c.format_mapping) if c.format_mapping else None
        units = {name: tables.metric_units[i] for name, i in tables.metric_ids.items()}
        return Router(
            c.formats, mapping=mapping, units=units, limits=c.limits, prefix=c.topic_prefix
        )

    @staticmethod
    def _sparkplug_state(c: IngesterConfig) -> dict[str, Any]:
        """The host application's STATE: online on every connection, offline as the will."""
        if "sparkplug" not in c.formats:
            return {}
        now_ms = time.time_ns() // 1_000_000
        host, prefix = c.sparkplug_host_id, c.topic_prefix
        online = host_state(host, online=True, timestamp_ms=now_ms, prefix=prefix)
        offline = host_state(host, online=False, timestamp_ms=now_ms, prefix=prefix)
        return {"will": offline, "on_connect": (online,)}

    async def __aenter__(self) -> Self:
        """Connect, warm the kernels, restore the detectors, subscribe, start the loop.

        Whatever was acquired is released again if a later step fails."""
        async with contextlib.AsyncExitStack() as stack:
            stack.enter_context(self._worker)  # shut down (waiting) last of all
            self._conn = await connect(self._database_url, autocommit=True)
            stack.push_async_callback(self._close_connection)
            self.mode = await current_mode(self._conn)
            log.info("ingester storing in %s mode", self.mode)
            await self._in_worker(self._warm_up)  # the JIT compiles before messages wait
            if self._detection is not None:
                await self._restore()
            stack.push_async_callback(self._finish)
            await stack.enter_async_context(self._subscription)
            self._task = asyncio.create_task(self._run(), name="citytel-ingest")
            stack.push_async_callback(self._stop_loop)
            self._stack = stack.pop_all()
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop taking messages, finish or abandon the batch in hand (unacknowledged),
        disconnect, flush the open windows, checkpoint, close: on every path."""
        await self._stack.aclose()

    async def _stop_loop(self) -> None:
        for future in self._submitted.values():  # not committed: the caller may retry
            future.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _finish(self) -> None:
        await self._flush_windows()
        await self._checkpoint()

    async def _close_connection(self) -> None:
        if self._conn is not None:
            await self._conn.close()

    async def _in_worker(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the kernels' thread: the event loop never runs a kernel, and one
        thread means the detectors' state is never touched by two at once."""
        return await asyncio.get_running_loop().run_in_executor(self._worker, fn)

    def _warm_up(self) -> None:
        """Run every kernel once on throwaway state, so the first batch waits for no JIT."""
        values = ValueColumns(
            np.array([time.time_ns() // 1000], dtype=np.int64),
            np.array([1], dtype=np.int32),
            np.array([1], dtype=np.int16),
            np.array([1.0]),
            np.array([0], dtype=np.int32),
            np.array([0], dtype=np.int32),
        )
        gateway = np.array([1], dtype=np.int32)
        aggregator = Aggregator(widths_s=self._aggregator.widths_s)
        aggregator.prepare(values, gateway, int(values.time_us[0]))
        aggregator.flush()
        if self._detection is not None:
            detection = Detection(timezone=self._timezone)
            detection.observe(values, gateway=gateway)
            detection.silence(int(values.time_us[0]))

    async def _flush_windows(self) -> None:
        """Write the windows still open, so a clean stop leaves no aggregate behind."""
        if self._conn is None or self._conn.closed:
            return
        prepared = await self._in_worker(self._aggregator.flush)
        try:
            async with transaction(self._conn):
                await self._aggregator.write(self._conn, prepared)
        except StorageError as exc:
            self._aggregator.undo(prepared)
            log.warning("could not write the open windows at shutdown: %s", exc)

    async def wait(self) -> None:
        """Run until cancelled, or until the ingest loop fails."""
        assert self._task is not None, "use the Ingester as an async context manager"
        await asyncio.shield(self._task)

    async def _run(self) -> None:
        subscription = self._subscription
        while True:
            await subscription.wait(self._batch_max_wait_s)
            await self._periodic()
            deliveries = subscription.take()
            if not deliveries:
                continue
            commit = asyncio.ensure_future(self._commit(deliveries))
            try:
                await asyncio.shield(commit)
            except asyncio.CancelledError:
                # Stopping: finish the batch in hand (commit, then ack) if the database
                # lets us soon; otherwise abandon it unacknowledged for the broker to
                # resend (wait_for cancels it: nothing of it runs on behind our back).
                with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(commit, self._shutdown_grace_s)
                raise

    async def submit(self, gateway_id: str, payload: bytes, channel: str = TELEMETRY) -> Outcome:
        """Ingest one message that came over HTTP, through the same batch path as MQTT;
        returns once it is committed (or dead-lettered), with what became of it.

        Raises ``Overloaded`` when the ingester holds as much as it may."""
        c = self._config
        if self.held >= c.receive_maximum or self._subscription.held_bytes >= c.max_held_bytes:
            raise Overloaded(f"holding {self.held} messages")
        received_us = max(time.time_ns() // 1000, self._last_submitted + 1)
        self._last_submitted = received_us  # unique: it names the message's outcome
        outcome: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._submitted[received_us] = outcome
        self._subscription.inject(
            topic(gateway_id, channel, prefix=self._prefix), payload, received_us
        )
        try:
            return await outcome
        finally:
            self._submitted.pop(received_us, None)

    def _settle(self, batch: Batch, result: WriteResult) -> None:
        """Tell the HTTP callers whose messages were in this committed batch."""
        if not self._submitted:
            return
        letters: dict[int, list[tuple[str, str]]] = {}
        for d in result.dead_letters:
            letters.setdefault(d.received_at_us, []).append((str(d.reason), d.detail))
        index = {at: m for m, at in enumerate(batch.msg_received)}
        here = set(batch.delivered_at)
        stored = result.stored
        for at, future in list(self._submitted.items()):
            if future.done() or at not in here:
                continue
            m = index.get(at)
            new = m is not None and result.new is not None and bool(result.new[m])
            values = int((stored.message == m).sum()) if new and stored is not None else 0
            refused = letters.get(at, [])
            # not new, or absent from the messages with nothing refused: a resend
            duplicate = (m is not None and not new) or (m is None and not refused)
            future.set_result(Outcome(values, duplicate, refused))

    @property
    def session(self) -> Subscription:
        """The MQTT session (for its counters: reconnects, lost sessions, held bytes)."""
        return self._subscription

    @property
    def held(self) -> int:
        """Messages in memory and not yet acknowledged (waiting, or being committed).

        Bounded by ``receive_maximum``: the broker sends no more until we ack.
        """
        return self._subscription.pending() + self._holding

    async def _commit(self, deliveries: list[Delivery]) -> None:
        self._holding = len(deliveries)
        for start in range(0, len(deliveries), self._batch_max_messages):
            chunk = deliveries[start : start + self._batch_max_messages]
            await self._store(chunk)
            self._subscription.ack(chunk)
            self._holding -= len(chunk)
            self.stats.deliveries += len(chunk)

    async def _store(self, deliveries: list[Delivery]) -> None:
        """Commit these deliveries, or dead-letter what the database refuses.

        "Not now" errors (connection lost, server shutting down) are retried with backoff
        for as long as it takes, unless the database is back and the same batch still
        fails ``max_attempts`` times: then it is treated like a refusal. A refused batch
        is stored message by message, and a message refused on its own is dead-lettered
        with the database's reason: one poison message never stops the others.
        """
        batch = self._batch(deliveries)
        with self.commit_seconds.time():
            await self._store_batch(batch, deliveries)

    async def _store_batch(self, batch: Batch, deliveries: list[Delivery]) -> None:
        delay, attempts = 0.2, 0
        while True:
            try:
                self._count(await self._write(batch))
                self.stats.duplicates += batch.duplicates
                return
            except StorageUnavailable as exc:
                self.stats.write_retries += 1
                log.warning("database unavailable, retrying in %.1f s: %s", delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max_s)
                await self._reconnect()
                attempts += self._conn is not None  # back, yet this batch failed
                if attempts < self._max_attempts:
                    continue
                error: StorageError = exc
            except StorageError as exc:
                error = exc
            if len(deliveries) == 1:
                await self._reject(deliveries[0], error)
                return
            log.warning("batch refused by the database, storing message by message: %s", error)
            for d in deliveries:
                await self._store([d])
            return

    def _batch(self, deliveries: list[Delivery]) -> Batch:
        builder = BatchBuilder(
            self._decoder,
            self._limits,
            self._prefix,
            self._tables,
            self._formats,
            self._retained_seen,
        )
        add = builder.add
        for d in deliveries:
            add(d.topic, d.payload, d.received_us, d.retain)
        return builder.finish()

    async def _write(self, batch: Batch) -> WriteResult:
        """The batch's registry changes, then its values, dead letters and rollups in one
        transaction of ours, then gateway statuses; finally detection on what was stored."""
        conn = self._conn
        if conn is None or conn.closed:
            raise StorageUnavailable("no database connection")
        registry = self._registry
        gateways = await registry.gateway_keys(conn, batch.gateway_ids)
        refused: list[DeadLetterRow] = []
        if batch.announced:
            upserts = [_upsert(a.gateway_id, a.device) for a in batch.announced]
            refused = batch.refused_announcements(await registry.announce(conn, upserts))
        device_gateway = {d: gateways[g] for d, g in batch.device_gateway.items()}
        devices = await registry.device_keys(
            conn, batch.r_device, device_gateway, claim=self._claim
        )
        now_us = time.time_ns() // 1000
        columns = batch.columns(gateways, devices, registry.kinds, now_us, registry.owners)
        aggregator = self._aggregator
        prepared: Prepared | None = None
        try:
            async with transaction(conn):
                result = await write_batch(
                    conn, columns.messages, columns.values, columns.dead_letters
                )
                if result.conflicts:
                    refused += batch.conflicts(*zip(*result.conflicts, strict=True))
                if refused:
                    await write_dead_letters(conn, refused)
                    result.dead_letters.extend(refused)
                assert result.stored is not None
                stored = result.stored
                gateway = columns.messages.gateway[stored.message]
                prepare = functools.partial(aggregator.prepare, stored, gateway, now_us)
                running = asyncio.ensure_future(self._in_worker(prepare))
                try:
                    prepared = await asyncio.shield(running)
                except asyncio.CancelledError:
                    prepared = await running  # it changed the windows: keep it to undo
                    raise
                await aggregator.write(conn, prepared)
        except BaseException:
            if prepared is not None:
                aggregator.undo(prepared)
            raise
        aggregator.confirm(prepared)
        self.stats.late_values = aggregator.late
        if batch.statuses:
            await registry.set_status(conn, dict(batch.statuses))
        for reply_topic, reply in batch.replies:  # committed: now ask for what we miss
            self._subscription.publish(reply_topic, reply)
        self._settle(batch, result)
        await self._detect(conn, columns, result.stored)
        return result

    async def _detect(
        self, conn: psycopg.AsyncConnection[TupleRow], columns: Columns, stored: ValueColumns
    ) -> None:
        """Anomaly episodes from the values just committed (their own transaction)."""
        detection = self._detection
        if detection is None:
            return
        observe = functools.partial(
            detection.observe,
            stored,
            gateway=columns.messages.gateway[stored.message],
            out_of_range=columns.out_of_range,
            received=columns.messages.received_at_us[stored.message],
        )
        with self.detect_seconds.time():
            changes = await self._in_worker(observe)
        await self._write_episodes(conn, changes)

    async def _write_episodes(
        self, conn: psycopg.AsyncConnection[TupleRow], changes: list[EpisodeChange]
    ) -> None:
        try:
            await write_episodes(conn, changes)
        except StorageError as exc:  # the values are safe; these episode changes are not
            log.warning("could not write %d episode changes: %s", len(changes), exc)
        if self._detection is not None:
            self.stats.episodes_opened = dict(self._detection.opened)

    async def _periodic(self) -> None:
        """Every ``catalog_poll_s``, a newer catalog version taken up; every
        ``dropout_check_s``, episodes for silent devices and gateways; every
        ``checkpoint_s``, the detectors' state to the database."""
        if self._conn is None or self._conn.closed:
            return
        now = time.monotonic()
        if now >= self._due["catalog"]:
            self._due["catalog"] = now + self._every["catalog"]
            await self._take_up_catalog()
        if self._detection is None:
            return
        if now >= self._due["silence"]:
            self._due["silence"] = now + self._every["silence"]
            silence = functools.partial(self._detection.silence, time.time_ns() // 1000)
            changes = await self._in_worker(silence)
            await self._write_episodes(self._conn, changes)
        if now >= self._due["checkpoint"]:
            self._due["checkpoint"] = now + self._every["checkpoint"]
            await self._checkpoint()

    async def _take_up_catalog(self) -> None:
        """Check the next batches against the catalog version in force, if it is newer.

        Batches are checked whole against one version: the loop polls between batches,
        so no message is checked twice or against two versions."""
        try:
            catalog = await newer_catalog(self._connection(), than=self._tables.version)
        except StorageError as exc:
            log.warning("could not poll the catalog: %s", exc)
            return
        if catalog is None:
            return
        self._tables = Tables.of(catalog)
        self._decoder = Decoder(limits=self._limits, kinds=self._tables.kinds)
        if self._formats is not None:  # units of the new version (Sparkplug nodes rebirth)
            self._formats = self._router(self._tables)
        self.stats.catalog_version = catalog.version
        log.info(
            "catalog version %d in force: %d kinds, %d metrics",
            catalog.version,
            len(catalog.kinds),
            len(catalog.metrics),
        )

    async def _checkpoint(self) -> None:
        if self._detection is None or self._conn is None or self._conn.closed:
            return
        # on the kernels' thread, after any detection still running there
        detection = self._detection
        blob = await self._in_worker(lambda: pack(detection.state()))
        try:
            await save_checkpoint(self._conn, self._checkpoint_name, blob)
        except StorageError as exc:
            log.warning("could not checkpoint the detectors: %s", exc)

    async def _restore(self) -> None:
        assert self._detection is not None and self._conn is not None
        blob = await load_checkpoint(self._conn, self._checkpoint_name)
        if blob is not None and self._detection.load(unpack(blob)):
            log.info("detector state restored from checkpoint %r", self._checkpoint_name)

    async def _reject(self, delivery: Delivery, exc: StorageError) -> None:
        """Dead-letter one message the database refuses even on its own."""
        log.error("database rejected a message on %s: %s", delivery.topic, exc)
        row = DeadLetterRow(
            delivery.received_us,
            delivery.topic,
            Reason.STORAGE_REJECTED,
            str(exc)[:2000],
            delivery.payload[: self._limits.dead_letter_payload_bytes],
        )
        async with transaction(self._connection()):
            await write_dead_letters(self._connection(), [row])
        self._count(WriteResult(dead_letters=[row]))
        future = self._submitted.get(delivery.received_us)
        if future is not None and not future.done():
            future.set_result(Outcome(0, False, [(row.reason, row.detail)]))

    def _connection(self) -> psycopg.AsyncConnection[TupleRow]:
        if self._conn is None or self._conn.closed:
            raise StorageUnavailable("no database connection")
        return self._conn

    async def _reconnect(self) -> None:
        if self._conn is not None:
            await self._conn.close()
        try:
            self._conn = await connect(self._database_url, autocommit=True)
            log.info("database connection re-established")
        except StorageUnavailable:
            self._conn = None

    def _count(self, result: WriteResult) -> None:
        stats = self.stats
        stats.batches += 1
        stats.messages += result.messages
        stats.duplicates += result.duplicates
        stats.values += result.values
        stats.dead_letters.update(d.reason for d in result.dead_letters)


def _upsert(gateway_id: str, d: DeviceInfo) -> DeviceUpsert:
    return DeviceUpsert(d.device_id, d.kind, gateway_id, d.latitude, d.longitude, d.attributes)
