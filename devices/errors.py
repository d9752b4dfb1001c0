"""The exceptions citytel raises. Bad input is never among them: it becomes a dead letter.

    CitytelError
    ├── ConfigurationError      a setting is missing or contradicts another
    ├── ServerError             a local Mosquitto or PostgreSQL could not be started
    ├── BrokerError             the MQTT broker refused us or cannot be reached
    └── StorageError            the database failed us
        ├── StorageUnavailable  ... for now: retry later (connection lost, server down)
        ├── StorageRejected     ... for this data: retrying it cannot help (bad value, limit)
        └── StorageTimeout      ... for taking too long: the statement was cancelled

Library errors (psycopg, psycopg_pool, gmqtt, aiomqtt) are translated where they cross
into our code: ``storage.database.map_errors`` for the database (by SQLSTATE class),
``ingest.mqtt`` for the broker. This module imports nothing of ours: every floor may use it.
"""


class CitytelError(Exception):
    """Root of every exception citytel raises on purpose."""


class ConfigurationError(CitytelError):
    """A setting is missing, malformed, or contradicts another."""


class ServerError(CitytelError):
    """A local server (Mosquitto, PostgreSQL) could not be found or started."""


class BrokerError(CitytelError):
    """The MQTT broker refused the connection or cannot be reached."""


class StorageError(CitytelError):
    """The database rejected an operation."""


class StorageUnavailable(StorageError):
    """The database cannot be reached right now; the operation may succeed later."""


class StorageRejected(StorageError):
    """The database refused this data (a data exception, a program limit, a constraint):
    the same data will fail the same way, so it is dead-lettered, not retried."""

    def __init__(self, message: str, *, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


class StorageTimeout(StorageError):
    """A statement ran longer than its timeout and was cancelled."""
