"""``citytel detect``: score an exported series (CSV of timestamp,value) for backtesting.

Writes timestamp,value,score,is_anomaly, one row per input row, each point scored only
from the points before it, with the same detectors the service runs.
"""

from __future__ import annotations

import csv
import sys
from typing import TextIO

import numpy as np
import numpy.typing as npt

from devices.errors import CitytelError
from processing.detectors import Combined


def read_series(f: TextIO) -> tuple[list[str], npt.NDArray[np.float64]]:
    """Timestamps as given, and values; a first row whose value is not a number is a header."""
    stamps, values = [], []
    for number, row in enumerate(csv.reader(f), start=1):
        if not row or not "".join(row).strip():
            continue
        if len(row) < 2:
            raise CitytelError(f"line {number}: expected timestamp,value")
        try:
            x = float(row[1])
        except ValueError:
            if number == 1:
                continue  # header
            raise CitytelError(f"line {number}: value {row[1]!r} is not a number") from None
        if not np.isfinite(x):
            raise CitytelError(f"line {number}: value {row[1]!r} is not finite")
        stamps.append(row[0])
        values.append(x)
    return stamps, np.array(values, dtype=np.float64)


def detect(source: TextIO, target: TextIO, *, threshold: float = 0.5) -> int:
    """Score ``source`` into ``target``; returns how many points are anomalous."""
    stamps, values = read_series(source)
    scores = Combined().update(
        np.zeros(len(values), dtype=np.int64), np.arange(len(values), dtype=np.int64), values
    )
    out = csv.writer(target, lineterminator="\n")
    out.writerow(["timestamp", "value", "score", "is_anomaly"])
    flagged = scores >= threshold
    for stamp, x, score, bad in zip(
        stamps, values.tolist(), scores.tolist(), flagged.tolist(), strict=True
    ):
        out.writerow([stamp, repr(x), f"{score:.4f}", "true" if bad else "false"])
    return int(flagged.sum())


def main(input_path: str, output_path: str | None, threshold: float) -> int:
    with open(input_path, newline="") as source:
        if output_path is None:
            found = detect(source, sys.stdout, threshold=threshold)
        else:
            with open(output_path, "w", newline="") as target:
                found = detect(source, target, threshold=threshold)
    print(f"{found} anomalous points", file=sys.stderr)
    return 0
