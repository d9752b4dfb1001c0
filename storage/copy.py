"""PostgreSQL binary COPY for readings, encoded with NumPy instead of a Python loop per row."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

PG_EPOCH_US = 946_684_800_000_000
"""2000-01-01T00:00:00Z in Unix microseconds: where PostgreSQL counts timestamps from."""

_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, header extension length
_TRAILER = b"\xff\xff"

# One tuple of readings (time, device, metric, value), each field preceded by its length.
_ROW = np.dtype(
    [
        ("fields", ">i2"),
        ("time_len", ">i4"),
        ("time", ">i8"),
        ("device_len", ">i4"),
        ("device", ">i4"),
        ("metric_len", ">i4"),
        ("metric", ">i2"),
        ("value_len", ">i4"),
        ("value", ">f8"),
    ]
)

READINGS_COPY = "COPY readings (time, device, metric, value) FROM STDIN (FORMAT BINARY)"


def encode_readings(
    time_us: npt.NDArray[np.int64],
    device: npt.NDArray[np.int32],
    metric: npt.NDArray[np.int16],
    value: npt.NDArray[np.float64],
) -> bytes:
    """The whole COPY BINARY stream (header, tuples, trailer) for these values.

    ``time_us`` is Unix time in microseconds.
    """
    rows = np.empty(len(time_us), dtype=_ROW)
    rows["fields"] = 4
    rows["time_len"] = 8
    rows["time"] = time_us - PG_EPOCH_US
    rows["device_len"] = 4
    rows["device"] = device
    rows["metric_len"] = 2
    rows["metric"] = metric
    rows["value_len"] = 8
    rows["value"] = value
    return _HEADER + rows.tobytes() + _TRAILER
