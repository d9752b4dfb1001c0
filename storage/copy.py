"""PostgreSQL binary COPY for readings, encoded with NumPy instead of a Python loop per row."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

PG_EPOCH_US = 946_684_800_000_000
"""2000-01-01T00:00:00Z in Unix microseconds: where PostgreSQL counts timestamps from."""

_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, header extension length
_TRAILER = b"\xff\xff"

VALUES_COPY = "COPY metric_values (time, device, metric, value) FROM STDIN (FORMAT BINARY)"


def encode_values(
    time_us: npt.NDArray[np.int64],
    device: npt.NDArray[np.int32],
    metric: npt.NDArray[np.int16],
    value: npt.NDArray[np.float64],
) -> bytes:
    """The whole COPY BINARY stream (header, tuples, trailer) for these values.

    ``time_us`` is Unix time in microseconds.
    """
    return encode_columns(
        [("time", time_us - PG_EPOCH_US), ("device", device), ("metric", metric), ("value", value)]
    )


def encode_columns(columns: list[tuple[str, npt.NDArray[Any]]]) -> bytes:
    """The COPY BINARY stream of these columns (NumPy arrays of one length, fixed-size
    types: each field goes as its big-endian bytes, preceded by its length)."""
    fields: list[tuple[str, str]] = [("n", ">i2")]
    for name, array in columns:
        fields += [(f"{name}_len", ">i4"), (name, array.dtype.newbyteorder(">").str)]
    rows = np.empty(len(columns[0][1]), dtype=np.dtype(fields))
    rows["n"] = len(columns)
    for name, array in columns:
        rows[f"{name}_len"] = array.dtype.itemsize
        rows[name] = array
    return _HEADER + rows.tobytes() + _TRAILER
