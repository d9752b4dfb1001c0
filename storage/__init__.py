"""Storage in PostgreSQL or TimescaleDB: schema migrations, registry, batch writer."""

from storage.database import Mode, connect, current_mode, map_errors
from storage.migrate import UpgradeReport, upgrade
from storage.registry import KIND_CODES, DeviceUpsert, Registry
from storage.writer import (
    NO_MESSAGE,
    NO_TIME,
    DeadLetterRow,
    MessageColumns,
    ValueColumns,
    WriteResult,
    write_batch,
)

__all__ = [
    "KIND_CODES",
    "NO_MESSAGE",
    "NO_TIME",
    "DeadLetterRow",
    "DeviceUpsert",
    "MessageColumns",
    "Mode",
    "Registry",
    "UpgradeReport",
    "ValueColumns",
    "WriteResult",
    "connect",
    "current_mode",
    "map_errors",
    "upgrade",
    "write_batch",
]
