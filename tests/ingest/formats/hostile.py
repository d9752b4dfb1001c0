"""Hostile inputs for the parsers' never-raise properties: junk, deep, huge, wrong types."""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

from hypothesis import strategies as st

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def deep(depth: int) -> bytes:
    """A JSON document nested ``depth`` levels deep."""
    return b'{"a":' * depth + b"1" + b"}" * depth


def dumps(value: Any) -> bytes:
    """JSON with NaN/Infinity as Python writes them (not JSON, as hostile senders do)."""
    return json.dumps(value, allow_nan=True).encode()


def mutate(document: dict[str, Any], path: list[str], value: Any) -> dict[str, Any]:
    """A copy of ``document`` with the field at ``path`` replaced by ``value``."""
    copy = json.loads(json.dumps(document))
    node = copy
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return copy


def finite(x: float) -> bool:
    return math.isfinite(x)


BAD_UTF8 = b'{"n":"\xff\xfe","v":1}'


def check_invariants(parsed: Any, units: Any) -> None:
    """What holds of every parse, however hostile the input: ids valid, values finite, known."""
    from ingest.formats.ids import valid_id

    assert parsed.identity is None or 0 <= parsed.identity < 2**63
    assert parsed.gateway_id is None or valid_id(parsed.gateway_id)
    for reading in parsed.readings:
        assert valid_id(reading.device_id)
        assert type(reading.ts) is int or isinstance(reading.ts, datetime)
        assert isinstance(reading.ts, int) or reading.ts.tzinfo is not None
        assert all(name in units and math.isfinite(v) for name, v in reading.metrics.items())
    for refusal in parsed.refusals:
        assert isinstance(refusal.reason, str) and isinstance(refusal.detail, str)
