"""Structure-aware messages for live fuzzing: valid, almost valid and hostile (hypothesis).

Every topic shape the ingester subscribes to (telemetry as JSON and as MessagePack,
status, device announcements; ids in the topic valid or not), and payloads from the
contract's own shape through one broken field to arbitrary bytes. A draft is rendered
into (topic, payload) by ``render``, which numbers telemetry: every message that carries
a well-formed ``seq`` gets one of its own, so that identities never collide and each
message can be found again in the ``messages`` table.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from datetime import UTC, timedelta, timezone
from typing import Any

import msgspec
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as seeded
from hypothesis import strategies as st

from devices.catalog import METRICS, Kind
from devices.contract import DEVICES, STATUS, TELEMETRY, TELEMETRY_MSGPACK, topic

GATEWAYS = [f"fz-{i:02d}" for i in range(40)]
DEVICE_IDS = [f"fz-d{i:03d}" for i in range(300)]
ROUND = 100
"""Examples per round of generation."""
NUMBER = "<seq>"
"""Placeholder for a seq that ``render`` fills in with a fresh number."""


@dataclass(frozen=True, slots=True)
class Draft:
    """A message before numbering: channel, the gateway id in its topic, and its body
    (raw bytes, or a structure to encode as JSON or MessagePack)."""

    channel: str
    gateway: str
    body: Any
    encoding: str = "json"  # "json", "msgpack" or "raw"


def _now_ms() -> int:
    return int(time.time() * 1000)


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
hostile_ids = st.sampled_from(
    ["", " ", "gw a", "ü-gateway", "x" * 65, "-lead", "a\u0000b", "a" * 64, "é", "..", "1:2"]
) | st.text(max_size=20)
topic_ids = st.sampled_from(GATEWAYS) | st.sampled_from(
    ["gw a", "ü", "x" * 65, "-lead", "weird$id", "a.b:c", "x" * 200]
)
"""Gateway ids as they appear in a topic: valid ones, and ones the id pattern refuses
(no MQTT wildcards, separators or NUL: the broker refuses those topics itself)."""


def _metric_values(low: float, high: float) -> st.SearchStrategy[Any]:
    return (
        st.floats(low, high)
        | st.sampled_from([low, high, low - 1, high + 1, 1e308, -1e308, 5e-324])
        | st.integers(int(low), int(high))
        | st.sampled_from(["12", None, True, [], {}])
    )


# Strategies are built once: hypothesis validates each new one, which costs more than
# drawing from it.
_METRIC_VALUES = {m.name: _metric_values(m.low, m.high) for m in METRICS}
_KIND_METRICS = {
    kind: st.lists(
        st.sampled_from([m.name for m in METRICS if m.kind == kind]),
        min_size=1,
        max_size=5,
        unique=True,
    )
    for kind in Kind
}
_KINDS = st.sampled_from(list(Kind))
_ODD_METRICS = st.sampled_from(["foo", "speed_kmh", "", "x" * 300])
_DEVICES = st.sampled_from(DEVICE_IDS) | hostile_ids
_ONE_IN_TEN = st.integers(0, 9)


def _timestamps(now_ms: int) -> st.SearchStrategy[Any]:
    return (
        st.integers(now_ms - 3 * 86_400_000, now_ms + 60_000)
        | st.sampled_from([0, -1, 946_684_799_999, now_ms + 10**9, 2**63 - 1, -(2**63)])
        | st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-6))])).map(
            lambda d: d.isoformat()
        )
        | st.sampled_from(["2025-11-21T22:09:59", "yesterday", ""])
    )


@st.composite
def _readings(draw: st.DrawFn, timestamps: st.SearchStrategy[Any]) -> dict[str, Any]:
    chosen = draw(_KIND_METRICS[draw(_KINDS)])
    metrics = {name: draw(_METRIC_VALUES[name]) for name in chosen}
    if draw(_ONE_IN_TEN) == 0:  # an unknown metric, another kind's, a bad name
        metrics[draw(_ODD_METRICS)] = 1.0
    return {"device_id": draw(_DEVICES), "ts": draw(timestamps), "metrics": metrics}


def readings(now_ms: int) -> st.SearchStrategy[dict[str, Any]]:
    """One reading: metrics of one kind (values in range, at its edges, beyond, of
    the wrong type), timestamps recent, too early, too late or malformed."""
    return _readings(_timestamps(now_ms))


_BROKEN = st.sampled_from(
    [
        ("seq", -1),
        ("seq", 2**64),
        ("seq", "7"),
        ("seq", None),
        ("seq", 1.5),
        ("gateway_id", "fz-other"),
        ("gateway_id", 7),
        ("readings", {}),
        ("readings", None),
        ("sent_at", -(10**15)),
        ("sent_at", "2025-11-21T22:09:59"),
        ("sent_at", 2**63 - 1),
        ("extra", "field"),
    ]
)


@st.composite
def _telemetry(draw: st.DrawFn, lists: st.SearchStrategy[list[Any]], now_ms: int) -> Draft:
    gateway = draw(topic_ids)
    body: dict[str, Any] = {
        "gateway_id": gateway,
        "seq": NUMBER,
        "sent_at": now_ms if draw(st.booleans()) else None,
        "readings": draw(lists),
    }
    if draw(st.integers(0, 3)) == 0:  # almost valid: one field broken
        field, value = draw(_BROKEN)
        body[field] = value
    if draw(st.integers(0, 9)) == 0:
        del body[draw(st.sampled_from(["seq", "gateway_id", "readings"]))]
    if draw(st.integers(0, 199)) == 0:  # a flood of bad readings in one message
        body["readings"] = [{"device_id": "fz-d000", "ts": "x", "metrics": {}}] * draw(
            st.integers(100, 3_000)
        )
    binary = draw(st.booleans())
    channel = TELEMETRY_MSGPACK if binary else TELEMETRY
    encoding = "msgpack" if binary else "json"
    if draw(st.integers(0, 19)) == 0:  # the other encoding on this channel
        encoding = "json" if binary else "msgpack"
    return Draft(channel, gateway, body, encoding)


def telemetry(now_ms: int) -> st.SearchStrategy[Draft]:
    """A telemetry message: valid, one field broken or missing, or a flood of bad
    readings; JSON or MessagePack, now and then on the other encoding's channel."""
    return _telemetry(st.lists(readings(now_ms), max_size=8), now_ms)


def _nested(depth: int) -> Any:
    value: Any = 1
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


small_hostile_bodies = (
    st.binary(max_size=300)
    | st.text(max_size=200).map(str.encode)
    | json_values.map(msgspec.json.encode)
    | st.integers(1, 200).map(lambda d: msgspec.json.encode(_nested(d)))
    | st.sampled_from(
        [
            b"",
            b"{",
            b"null",
            b"[]",
            b'{"gateway_id": "fz-00", "seq": 1, "readings": [{"ts": 1e309}]}',
            b'{"a": "\\u0000"}',
            b"\xff\xfe\x00",
        ]
    )
)


@st.composite
def hostile_bodies(draw: st.DrawFn) -> bytes:
    """Mostly small; one in 100 deep or long, one in 1,000 over the payload limit."""
    rare = draw(st.integers(0, 999))
    if rare == 0:
        return b"x" * ((1 << 20) + 1)
    if rare < 10:
        return draw(st.sampled_from([b"{" * 10_000, b"[" * 100_000, b'"' + b"a" * 60_000]))
    return draw(small_hostile_bodies)


@st.composite
def hostile(draw: st.DrawFn) -> Draft:
    channel = draw(st.sampled_from([TELEMETRY, TELEMETRY_MSGPACK, STATUS, DEVICES]))
    return Draft(channel, draw(topic_ids), draw(hostile_bodies()), "raw")


@st.composite
def status(draw: st.DrawFn) -> Draft:
    body = draw(
        st.sampled_from([b"online", b"offline", b" online\n"])
        | st.sampled_from([b"ONLINE", b"on", b"", b"offline!", b"\x00online"])
        | st.binary(max_size=20)
    )
    return Draft(STATUS, draw(topic_ids), body, "raw")


@st.composite
def announcement(draw: st.DrawFn) -> Draft:
    gateway = draw(topic_ids)
    devices = []
    for _ in range(draw(st.integers(0, 5))):
        device: dict[str, Any] = {
            "device_id": draw(st.sampled_from(DEVICE_IDS) | hostile_ids),
            "kind": draw(st.sampled_from([k.value for k in Kind]) | st.sampled_from(["", "x"])),
            "latitude": draw(st.none() | st.floats(-100, 100)),
            "longitude": draw(st.none() | st.floats(-200, 200)),
        }
        if draw(st.booleans()):
            device["attributes"] = draw(st.dictionaries(st.text(max_size=8), json_values))
        devices.append(device)
    body: dict[str, Any] = {"gateway_id": gateway, "devices": devices}
    if draw(st.integers(0, 9)) == 0:
        body["gateway_id"] = draw(st.sampled_from(["fz-other", 3, None]))
    return Draft(DEVICES, gateway, body)


def drafts(now_ms: int) -> st.SearchStrategy[Draft]:
    """The mix: about half telemetry, the rest hostile bytes, statuses and announcements."""
    t = telemetry(now_ms)
    return st.one_of(t, t, t, hostile(), status(), announcement())


def generate(count: int, *, seed: int = 1, per_example: int = 20) -> list[Draft]:
    """``count`` drafts drawn by hypothesis (its generate phase only: no shrinking)."""
    out: list[Draft] = []
    now_ms = _now_ms()
    for round_ in itertools.count():
        if len(out) >= count:
            break

        @seeded(seed * 1_000_003 + round_)
        @settings(
            # Rounds of a few hundred examples: the engine slows as its record grows.
            max_examples=min(ROUND, (count - len(out)) // per_example + 1),
            phases=[Phase.generate],
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(st.lists(drafts(now_ms), min_size=per_example, max_size=per_example))
        def collect(batch: list[Draft]) -> None:
            out.extend(batch)

        collect()
    return out[:count]


def render(draft: Draft, numbers: itertools.count[int], *, prefix: str) -> tuple[str, bytes]:
    """The draft as (topic, payload), with a fresh seq wherever it says ``NUMBER``."""
    where = topic(draft.gateway, draft.channel, prefix=prefix)
    if draft.encoding == "raw":
        return where, draft.body
    body = draft.body
    if isinstance(body, dict) and body.get("seq") == NUMBER:
        body = {**body, "seq": next(numbers)}
    encode = msgspec.msgpack.encode if draft.encoding == "msgpack" else msgspec.json.encode
    try:
        return where, encode(body)
    except (OverflowError, TypeError, ValueError, msgspec.EncodeError):
        # Not representable in this encoding (an integer beyond 64 bits in MessagePack):
        # what a gateway would send instead is its JSON.
        return where, msgspec.json.encode(body)
