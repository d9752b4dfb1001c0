"""The exceptions citytel raises. Bad input is never among them: it becomes a dead letter.

    CitytelError
    ├── ConfigurationError      a setting is missing or contradicts another
    ├── ServerError             a local Mosquitto or PostgreSQL could not be started
    ├── BrokerError             the MQTT broker refused us or cannot be reached
    └── StorageError            the database failed us
        └── StorageUnavailable  ... for now: retry later (connection lost, server down)

Library errors (psycopg, paho) are translated where they cross into our code:
``storage.database.map_errors`` for the database, ``ingest.mqtt`` for the broker.
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
