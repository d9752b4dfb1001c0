from __future__ import annotations

from datetime import UTC, datetime

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.decode import Decoder
from ingest.limits import Limits
from ingest.reasons import Reason

decoder = Decoder(limits=Limits(max_payload_bytes=4096, max_readings_per_message=3))


def _message(**overrides: object) -> bytes:
    body: dict[str, object] = {
        "gateway_id": "gw-1",
        "seq": 7,
        "sent_at": 1763762999123,
        "readings": [
            {"device_id": "sl-1", "ts": 1763762999000, "metrics": {"power_w": 41.2, "lamp_on": 1}}
        ],
    }
    body.update(overrides)
    return msgspec.json.encode(body)


def test_a_valid_message_decodes_on_the_fast_path() -> None:
    message, rejections = decoder.telemetry("gw-1", _message())
    assert rejections == []
    assert message is not None and message.seq == 7
    assert message.readings[0].metrics == {"power_w": 41.2, "lamp_on": 1.0}


def test_rfc3339_timestamps_are_accepted_and_naive_ones_rejected() -> None:
    readings = [
        {"device_id": "a", "ts": "2025-11-21T22:09:59.5-06:00", "metrics": {"dim_pct": 5}},
        {"device_id": "b", "ts": "2025-11-21T22:09:59", "metrics": {"dim_pct": 5}},
    ]
    message, rejections = decoder.telemetry("gw-1", _message(readings=readings))
    assert message is not None
    assert message.readings[0].ts == datetime(2025, 11, 22, 4, 9, 59, 500000, tzinfo=UTC)
    assert [r.reason for r in rejections] == [Reason.INVALID_READING]
    assert "timezone" in rejections[0].detail


def test_one_bad_reading_does_not_cost_the_others() -> None:
    readings = [
        {"device_id": "a", "ts": 1, "metrics": {"power_w": 1}},
        {"device_id": "b", "ts": 1, "metrics": {"power_w": "high"}},
        {"device_id": "c", "ts": 1, "metrics": {"power_w": 3}},
    ]
    message, rejections = decoder.telemetry("gw-1", _message(readings=readings))
    assert message is not None and [r.device_id for r in message.readings] == ["a", "c"]
    assert len(rejections) == 1 and rejections[0].reason is Reason.INVALID_READING
    assert "Expected `float`, got `str` - at `$.metrics" in rejections[0].detail
    assert msgspec.json.decode(rejections[0].payload)["device_id"] == "b"


def test_whole_message_rejections() -> None:
    cases = {
        b"{not json": Reason.MALFORMED,
        b"[1, 2]": Reason.INVALID_MESSAGE,
        _message(seq=-1): Reason.INVALID_MESSAGE,
        _message(gateway_id="gw-2"): Reason.GATEWAY_MISMATCH,
        _message(
            readings=[{"device_id": "a", "ts": 1, "metrics": {}}] * 4
        ): Reason.TOO_MANY_READINGS,
        b" " * 5000: Reason.PAYLOAD_TOO_LARGE,
        _message(gateway_id="gw/1"): Reason.INVALID_MESSAGE,
    }
    for payload, reason in cases.items():
        message, rejections = decoder.telemetry("gw-1", payload)
        assert message is None, payload
        assert [r.reason for r in rejections] == [reason], payload


def test_messagepack_carries_the_same_structure() -> None:
    packed = msgspec.msgpack.encode(msgspec.json.decode(_message()))
    message, rejections = decoder.telemetry("gw-1", packed, binary=True)
    assert rejections == [] and message is not None and message.seq == 7
    message, rejections = decoder.telemetry("gw-1", _message(), binary=True)
    assert message is None and rejections[0].reason is Reason.MALFORMED


def test_announcements_keep_valid_devices_and_reject_unknown_kinds() -> None:
    payload = msgspec.json.encode(
        {
            "gateway_id": "gw-1",
            "devices": [
                {"device_id": "sl-1", "kind": "streetlight", "latitude": 41.9, "longitude": -87.6},
                {"device_id": "x-1", "kind": "toaster"},
                {"device_id": "sl-2", "kind": "streetlight", "latitude": 91},
            ],
        }
    )
    devices, rejections = decoder.announcement("gw-1", payload)
    assert [d.device_id for d in devices] == ["sl-1"]
    assert [r.reason for r in rejections] == [Reason.UNKNOWN_KIND, Reason.INVALID_DEVICE]


def test_status_accepts_online_and_offline_only() -> None:
    assert decoder.status(b"online") == ("online", [])
    assert decoder.status(b"offline\n") == ("offline", [])
    status, rejections = decoder.status(b"busy")
    assert status is None and rejections[0].reason is Reason.INVALID_STATUS


@settings(max_examples=400)
@given(st.binary(max_size=600), st.booleans())
def test_arbitrary_bytes_never_raise_and_rejections_have_reasons(data: bytes, binary: bool) -> None:
    message, rejections = decoder.telemetry("gw-1", data, binary=binary)
    assert message is not None or rejections
    assert all(r.reason and r.detail for r in rejections)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300)
@given(
    st.lists(
        st.one_of(
            json_values,
            st.fixed_dictionaries(
                {
                    "device_id": st.text(max_size=8),
                    "ts": st.integers() | st.text(max_size=30),
                    "metrics": st.dictionaries(st.text(max_size=8), json_values, max_size=4),
                }
            ),
        ),
        max_size=3,
    )
)
def test_every_reading_is_kept_or_rejected_with_a_reason(readings: list[object]) -> None:
    message, rejections = decoder.telemetry("gw-1", _message(readings=readings))
    assert message is not None
    assert len(message.readings) + len(rejections) == len(readings)


def test_deeply_nested_json_is_a_dead_letter_not_a_crash() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    big = Decoder(limits=Limits(max_payload_bytes=1 << 20))
    message, rejections = big.telemetry("gw-1", deep)
    assert message is None and rejections[0].reason in (Reason.MALFORMED, Reason.INVALID_MESSAGE)
