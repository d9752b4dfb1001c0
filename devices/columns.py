"""The batch's data model: the columns every floor above passes around.

Ingest builds these, processing reads and emits them, storage writes them; none of
those packages imports another for a type, they all import this bottom-floor module.
Times are Unix microseconds throughout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

NO_MESSAGE = -1
"""``DeadLetterRow.message`` for input that has no message identity (undecodable, status...)."""

NO_TIME = np.iinfo(np.int64).min
"""``MessageColumns.sent_at_us`` when the gateway sent no time."""


@dataclass(frozen=True, slots=True)
class MessageColumns:
    """The telemetry messages of a batch, one entry each, identities unique in the batch."""

    gateway: npt.NDArray[np.int32]
    seq: npt.NDArray[np.int64]
    sent_at_us: npt.NDArray[np.int64]  # NO_TIME when the gateway sent none
    received_at_us: npt.NDArray[np.int64]
    digest: npt.NDArray[np.int64] | None = None
    """Each message's content digest, to tell a resend from a conflicting duplicate."""

    def __len__(self) -> int:
        return len(self.gateway)


@dataclass(frozen=True, slots=True)
class ValueColumns:
    """The valid values of a batch, one row per value; ``message`` indexes ``MessageColumns``."""

    time_us: npt.NDArray[np.int64]
    device: npt.NDArray[np.int32]
    metric: npt.NDArray[np.int16]
    value: npt.NDArray[np.float64]
    message: npt.NDArray[np.int32]
    reading: npt.NDArray[np.int32]  # index of the reading in the batch, for counting readings

    def __len__(self) -> int:
        return len(self.time_us)

    def take(self, mask: npt.NDArray[np.bool_]) -> ValueColumns:
        """The values where ``mask`` holds."""
        return ValueColumns(
            self.time_us[mask],
            self.device[mask],
            self.metric[mask],
            self.value[mask],
            self.message[mask],
            self.reading[mask],
        )


@dataclass(frozen=True, slots=True)
class DeadLetterRow:
    """One refused piece of input (a message, a reading or a value) and why."""

    received_at_us: int
    topic: str
    reason: str
    detail: str
    payload: bytes
    gateway_id: str | None = None
    seq: int | None = None
    message: int = NO_MESSAGE


@dataclass(frozen=True, slots=True)
class EpisodeChange:
    """An episode that opened or closed: of a device (metric None: the whole device), or of
    a whole gateway (device None, gateway set)."""

    device: int | None
    metric: int | None
    detector: str
    opened: bool  # else closed
    start_us: int
    end_us: int
    peak: float
    observed: float
    gateway: int | None = None


@dataclass(frozen=True, slots=True)
class Partials:
    """Partial aggregates of (series, window): one entry each, mergeable."""

    series: I64
    window: I64  # window start, in the time unit of the input (µs)
    count: I64
    sum: F64
    mean: F64
    m2: F64  # sum of squared deviations from the mean (Welford)
    min: F64
    max: F64
    first_time: I64
    first: F64
    last_time: I64
    last: F64
    late: I64  # values that arrived after their series had moved to a later window

    def __len__(self) -> int:
        return len(self.series)

    @property
    def std(self) -> F64:
        """Population standard deviation of each window."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.sqrt(self.m2 / self.count)
