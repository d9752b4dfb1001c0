"""Replaying dead letters the catalog now accepts (``citytel deadletters replay``).

A value refused as ``unknown_metric`` or ``metric_not_of_kind`` goes through the same
checks as live input (``ingest.batch``), against the catalog version in force; the
values that pass are stored, merged into the rollups and their dead letters marked
replayed, all in one transaction per chunk. A replayed dead letter is never replayed
again, so values are stored once however often replay runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
import numpy as np

from devices.columns import Partials, ValueColumns
from devices.contract import topic
from devices.tables import METRIC_SLOTS, Tables
from ingest.batch import BatchBuilder, Columns
from ingest.config import IngesterConfig
from ingest.decode import Decoder
from processing.windows import merge, singles
from storage.catalog import load_catalog
from storage.database import connect, transaction
from storage.deadletters import DeadLetter, claim_replayable, store_replayed
from storage.registry import Registry


@dataclass(slots=True)
class ReplayReport:
    """What a replay did."""

    replayed: int = 0
    """Dead letters whose values are now stored."""
    values: int = 0
    still_refused: int = 0
    """Dead letters the catalog in force still refuses (left as they are)."""


async def replay(
    database_url: str,
    *,
    reason: str,
    since: datetime | None = None,
    config: IngesterConfig | None = None,
    chunk: int = 1_000,
) -> ReplayReport:
    """Replay the dead letters of ``reason`` (since ``since``) that the catalog accepts."""
    config = config or IngesterConfig()
    report = ReplayReport()
    conn = await connect(database_url, autocommit=True)
    try:
        tables = Tables.of(await load_catalog(conn))
        decoder = Decoder(limits=config.limits, kinds=tables.kinds)
        registry = Registry()
        after = 0
        while True:
            async with transaction(conn):
                rows = await claim_replayable(
                    conn, reason=reason, since=since, after_id=after, limit=chunk
                )
                if not rows:
                    return report
                after = rows[-1].id
                builder = BatchBuilder(decoder, config.limits, "", tables)
                usable = [r for r in rows if r.gateway_id is not None]
                report.still_refused += len(rows) - len(usable)
                for i, row in enumerate(usable):
                    builder.add(*_as_delivery(row, i))
                batch = builder.finish()
                gateways = await registry.gateway_keys(conn, batch.gateway_ids)
                owner = {d: gateways[g] for d, g in batch.device_gateway.items()}
                claim = config.unknown_devices == "claim"
                devices = await registry.device_keys(conn, batch.r_device, owner, claim=claim)
                now_us = time.time_ns() // 1000
                columns = batch.columns(gateways, devices, registry.kinds, now_us, registry.owners)
                ok = _accepted(columns, len(usable))
                values = columns.values.take(ok[columns.values.message])
                replayed = [usable[m].id for m in np.flatnonzero(ok).tolist()]
                await store_replayed(conn, replayed, values, _partials(values, config))
                report.replayed += len(replayed)
                report.values += len(values)
                report.still_refused += len(usable) - len(replayed)
    finally:
        await conn.close()


def _as_delivery(row: DeadLetter, index: int) -> tuple[str, bytes, int]:
    """A dead-lettered value as a one-reading message (identity: its place in the chunk)."""
    part: dict[str, Any] = msgspec.json.decode(row.payload)
    metrics = part.get("metrics") or {part.get("metric"): part.get("value")}
    reading = {"device_id": part.get("device_id"), "ts": part.get("ts"), "metrics": metrics}
    payload = {"gateway_id": row.gateway_id, "seq": index, "readings": [reading]}
    received_us = int(row.received_at.timestamp() * 1_000_000)
    assert row.gateway_id is not None
    return topic(row.gateway_id, "telemetry"), msgspec.json.encode(payload), received_us


def _accepted(columns: Columns, n: int) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """Per replayed message: stored whole now (none of its values refused again)."""
    ok = np.zeros(n, dtype=np.bool_)
    ok[columns.values.message] = True
    for d in columns.dead_letters:
        if 0 <= d.message < n:
            ok[d.message] = False
    return ok


def _partials(values: ValueColumns, config: IngesterConfig) -> dict[int, Partials]:
    """The replayed values as late one-value partials of each rollup width, merged."""
    series = values.device.astype(np.int64) * METRIC_SLOTS + values.metric
    return {
        width: merge(singles(series, values.time_us, values.value, width * 1_000_000))
        for width in config.rollup_widths_s
    }
