"""Detector state as named arrays, to checkpoint it and to put it back after a restart.

Every detector keeps its state in NumPy arrays held as attributes (or in a dict of them,
or in a helper object holding them); ``arrays_of`` collects them under dotted names and
``load_arrays`` sets them back, so a detector needs no code of its own to be saved.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

Arrays = dict[str, npt.NDArray[Any]]
A = TypeVar("A", npt.NDArray[np.int64], npt.NDArray[np.float64])


def grow(a: A, need: int, fill: float) -> A:
    """``a`` with room for ``need`` entries, new ones ``fill``: at least doubled when it
    grows, so series joining one by one copy the state rarely."""
    if need <= len(a):
        return a
    grown: A = np.concatenate([a, np.full(max(need, 2 * len(a)) - len(a), fill, dtype=a.dtype)])
    return grown


def _places(obj: object, prefix: str = "") -> Iterator[tuple[str, Any, str, np.ndarray]]:
    """(dotted name, holder, field, array) of every array reachable from ``obj``'s
    attributes: held directly, in a dict, or in a helper object."""
    for name, v in vars(obj).items():
        key = f"{prefix}{name}"
        if isinstance(v, np.ndarray):
            yield key, obj, name, v
        elif isinstance(v, dict):
            for k, a in v.items():
                if isinstance(a, np.ndarray):
                    yield f"{key}.{k}", v, k, a
                elif hasattr(a, "__dict__"):
                    yield from _places(a, f"{key}.{k}.")
        elif hasattr(v, "__dict__") and not isinstance(v, type):
            yield from _places(v, f"{key}.")


def arrays_of(obj: object) -> Arrays:
    """Every array reachable from ``obj``'s attributes, by dotted name."""
    return {key: a for key, _, _, a in _places(obj)}


def load_arrays(obj: object, arrays: Arrays) -> None:
    """Set ``obj``'s arrays from ``arrays`` (names as ``arrays_of`` gives them)."""
    for key, holder, field, _ in list(_places(obj)):
        if key in arrays:
            if isinstance(holder, dict):
                holder[field] = arrays[key].copy()
            else:
                setattr(holder, field, arrays[key].copy())


def pack(arrays: Arrays) -> bytes:
    """Arrays as one compressed ``.npz`` blob."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def unpack(blob: bytes) -> Arrays:
    with np.load(io.BytesIO(blob), allow_pickle=False) as f:
        return {k: f[k] for k in f.files}
