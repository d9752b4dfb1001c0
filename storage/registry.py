"""The device and gateway registry: upserts, and a cache of their integer keys.

The ingester resolves every gateway and device id it meets to the small integer keys
stored in readings. A device never announced is registered on its first reading
(``announced = false``, no kind) so that its readings are stored, never dropped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg.rows import TupleRow

from devices.tables import kind_code
from storage.database import map_errors


@dataclass(frozen=True, slots=True)
class DeviceUpsert:
    device_id: str
    kind: str
    gateway_id: str
    latitude: float | None
    longitude: float | None
    attributes: dict[str, Any]


class Registry:
    """Cache of gateway and device keys; every method commits what it registers."""

    def __init__(self) -> None:
        self._gateways: dict[str, int] = {}
        self._devices: dict[str, int] = {}
        self._kinds = np.zeros(1024, dtype=np.int8)
        self._owners = np.zeros(1024, dtype=np.int32)

    @property
    def kinds(self) -> npt.NDArray[np.int8]:
        """Kind code by device key (``devices.tables.kind_code``); index with device keys."""
        return self._kinds

    @property
    def owners(self) -> npt.NDArray[np.int32]:
        """The key of each device's gateway, by device key (0: none yet)."""
        return self._owners

    async def gateway_keys(
        self, conn: psycopg.AsyncConnection[TupleRow], gateway_ids: Iterable[str]
    ) -> dict[str, int]:
        """Keys of these gateways, registering the new ones."""
        missing = sorted({g for g in gateway_ids if g not in self._gateways})
        if missing:
            rows = await _upsert_returning(
                conn,
                "INSERT INTO gateways (gateway_id) SELECT * FROM unnest(%s::text[])"
                " ON CONFLICT (gateway_id) DO UPDATE SET gateway_id = excluded.gateway_id"
                " RETURNING gateway_id, id",
                (missing,),
            )
            self._gateways.update((name, key) for name, key in rows)
        return self._gateways

    async def device_keys(
        self,
        conn: psycopg.AsyncConnection[TupleRow],
        device_ids: Sequence[str],
        gateway_of: dict[str, int],
        *,
        claim: bool = True,
    ) -> npt.NDArray[np.int32]:
        """Keys of these devices, in order; 0 for a device not registered.

        ``gateway_of`` maps a device id to the key of the gateway it was heard through.
        With ``claim``, an unseen device is registered (unannounced) as that gateway's;
        without, only devices already registered have keys.
        """
        cache = self._devices
        missing = sorted({d for d in device_ids if d not in cache})
        if missing and claim:
            rows = await _upsert_returning(
                conn,
                "INSERT INTO devices (device_id, gateway)"
                " SELECT * FROM unnest(%s::text[], %s::int4[])"
                " ON CONFLICT (device_id) DO UPDATE SET device_id = excluded.device_id"
                " RETURNING device_id, id, kind, gateway",
                (missing, [gateway_of[d] for d in missing]),
            )
            self._remember(rows)
        elif missing:
            rows = await _upsert_returning(
                conn,
                "SELECT device_id, id, kind, gateway FROM devices"
                " WHERE device_id = ANY(%s::text[])",
                (missing,),
            )
            self._remember(rows)
        get = cache.get
        return np.fromiter((get(d, 0) for d in device_ids), np.int32, len(device_ids))

    async def announce(
        self, conn: psycopg.AsyncConnection[TupleRow], devices: Sequence[DeviceUpsert]
    ) -> set[str]:
        """Upsert announced devices (last announcement of a device wins); returns the ids
        of those that belong to another gateway, which an announcement cannot move."""
        latest = {d.device_id: d for d in devices}
        gateways = await self.gateway_keys(conn, {d.gateway_id for d in latest.values()})
        rows = await _upsert_returning(
            conn,
            "INSERT INTO devices (device_id, kind, gateway, latitude, longitude, attributes,"
            "  announced, announced_at)"
            " SELECT d.*, true, now() FROM unnest(%s::text[], %s::text[], %s::int4[],"
            "  %s::float8[], %s::float8[], %s::jsonb[]) AS d"
            " ON CONFLICT (device_id) DO UPDATE SET kind = excluded.kind,"
            "  gateway = excluded.gateway, latitude = excluded.latitude,"
            "  longitude = excluded.longitude, attributes = excluded.attributes,"
            "  announced = true, announced_at = excluded.announced_at"
            " WHERE devices.gateway IS NULL OR devices.gateway = excluded.gateway"
            " RETURNING device_id, id, kind, gateway",
            (
                [d.device_id for d in latest.values()],
                [d.kind for d in latest.values()],
                [gateways[d.gateway_id] for d in latest.values()],
                [d.latitude for d in latest.values()],
                [d.longitude for d in latest.values()],
                [json.dumps(d.attributes) for d in latest.values()],
            ),
        )
        self._remember(rows)
        return set(latest) - {row[0] for row in rows}

    async def set_status(
        self, conn: psycopg.AsyncConnection[TupleRow], statuses: dict[str, tuple[str, int]]
    ) -> None:
        """Record each gateway's latest status: gateway_id -> (status, Unix µs)."""
        await self.gateway_keys(conn, statuses)
        names = list(statuses)
        with map_errors():
            async with conn.transaction():
                await conn.execute(
                    "UPDATE gateways g SET status = s.status, status_at = 'epoch'::timestamptz"
                    "  + s.at * INTERVAL '1 microsecond'"
                    " FROM unnest(%s::text[], %s::text[], %s::int8[]) AS s (gateway_id, status, at)"
                    " WHERE g.gateway_id = s.gateway_id",
                    (names, [statuses[n][0] for n in names], [statuses[n][1] for n in names]),
                )

    def _remember(self, rows: list[tuple[Any, ...]]) -> None:
        for device_id, key, kind, gateway in rows:
            self._devices[device_id] = key
            if key >= len(self._kinds):
                size = max(2 * len(self._kinds), key + 1)
                self._kinds = _grown(self._kinds, size)
                self._owners = _grown(self._owners, size)
            self._kinds[key] = kind_code(kind)
            self._owners[key] = gateway or 0


def _grown(a: npt.NDArray[Any], size: int) -> npt.NDArray[Any]:
    out = np.zeros(size, dtype=a.dtype)
    out[: len(a)] = a
    return out


async def _upsert_returning(
    conn: psycopg.AsyncConnection[TupleRow], query: str, params: tuple[Any, ...]
) -> list[tuple[Any, ...]]:
    with map_errors():
        async with conn.transaction():
            cur = await conn.execute(query, params)
            return await cur.fetchall()
