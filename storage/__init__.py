"""Storage in PostgreSQL or TimescaleDB: schema migrations, registry, batch writer."""

from storage.database import Mode, connect, current_mode, map_errors, pooled, transaction
from storage.migrate import UpgradeReport, upgrade
from storage.registry import DeviceUpsert, Registry
from storage.writer import WriteResult, write_batch, write_dead_letters

__all__ = [
    "DeviceUpsert",
    "Mode",
    "Registry",
    "UpgradeReport",
    "WriteResult",
    "connect",
    "current_mode",
    "map_errors",
    "pooled",
    "transaction",
    "upgrade",
    "write_batch",
    "write_dead_letters",
]
