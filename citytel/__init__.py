"""citytel: telemetry ingestion for a city's connected infrastructure.

This package is the composition root (settings, CLI, the supervisor behind ``citytel up``)
and holds the service-wide exception tree in ``devices.errors``.
"""

__version__ = "0.1.0"
