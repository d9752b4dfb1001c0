"""Pure compute over NumPy arrays: windowed aggregates, anomaly scores and episodes.

Imports no storage, transport or HTTP: arrays in, arrays out.
"""

from processing.detectors import Combined, Deviation, Flatline
from processing.episodes import CLOSED, OPENED, Changes, Episodes
from processing.windows import EMPTY, Windows, merge, singles

__all__ = [
    "CLOSED",
    "EMPTY",
    "OPENED",
    "Changes",
    "Combined",
    "Deviation",
    "Episodes",
    "Flatline",
    "Windows",
    "merge",
    "singles",
]
