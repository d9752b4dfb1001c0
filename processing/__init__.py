"""Pure compute over NumPy arrays: windowed aggregates (anomaly detection to come).

Imports no storage, transport or HTTP: arrays in, arrays out.
"""

from processing.windows import EMPTY, Partials, Windows, merge, singles

__all__ = ["EMPTY", "Partials", "Windows", "merge", "singles"]
