"""Detector state as named arrays, to checkpoint it and to put it back after a restart.

Every detector keeps its state in NumPy arrays held as attributes (or in a dict of them,
or in a helper object holding them); ``arrays_of`` collects them under dotted names and
``load_arrays`` sets them back, so a detector needs no code of its own to be saved.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import numpy.typing as npt

Arrays = dict[str, npt.NDArray[Any]]


def arrays_of(obj: object, prefix: str = "") -> Arrays:
    """Every array reachable from ``obj``'s attributes, by dotted name."""
    out: Arrays = {}
    for name, v in vars(obj).items():
        key = f"{prefix}{name}"
        if isinstance(v, np.ndarray):
            out[key] = v
        elif isinstance(v, dict):
            for k, a in v.items():
                if isinstance(a, np.ndarray):
                    out[f"{key}.{k}"] = a
                elif hasattr(a, "__dict__"):
                    out.update(arrays_of(a, f"{key}.{k}."))
        elif hasattr(v, "__dict__") and not isinstance(v, type):
            out.update(arrays_of(v, f"{key}."))
        elif isinstance(v, tuple):
            for i, a in enumerate(v):
                if hasattr(a, "__dict__"):
                    out.update(arrays_of(a, f"{key}.{i}."))
    return out


def load_arrays(obj: object, arrays: Arrays, prefix: str = "") -> None:
    """Set ``obj``'s arrays from ``arrays`` (names as ``arrays_of`` gives them)."""
    for name, v in vars(obj).items():
        key = f"{prefix}{name}"
        if isinstance(v, np.ndarray):
            if key in arrays:
                setattr(obj, name, arrays[key].copy())
        elif isinstance(v, dict):
            for k, a in list(v.items()):
                if isinstance(a, np.ndarray):
                    if f"{key}.{k}" in arrays:
                        v[k] = arrays[f"{key}.{k}"].copy()
                elif hasattr(a, "__dict__"):
                    load_arrays(a, arrays, f"{key}.{k}.")
        elif hasattr(v, "__dict__") and not isinstance(v, type):
            load_arrays(v, arrays, f"{key}.")
        elif isinstance(v, tuple):
            for i, a in enumerate(v):
                if hasattr(a, "__dict__"):
                    load_arrays(a, arrays, f"{key}.{i}.")


def pack(arrays: Arrays) -> bytes:
    """Arrays as one compressed ``.npz`` blob."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def unpack(blob: bytes) -> Arrays:
    with np.load(io.BytesIO(blob), allow_pickle=False) as f:
        return {k: f[k] for k in f.files}
