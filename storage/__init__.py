"""Storage in PostgreSQL or TimescaleDB: schema migrations, registry, batch writer."""

from storage.database import Mode, connect, current_mode, map_errors
from storage.migrate import UpgradeReport, upgrade
from storage.registry import DeviceUpsert, Registry
from storage.writer import WriteResult, write_batch

__all__ = [
    "DeviceUpsert",
    "Mode",
    "Registry",
    "UpgradeReport",
    "WriteResult",
    "connect",
    "current_mode",
    "map_errors",
    "upgrade",
    "write_batch",
]
