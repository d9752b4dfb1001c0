from __future__ import annotations

import msgspec
import numpy as np

from devices.catalog import BY_NAME
from devices.tables import kind_code
from ingest.batch import Batch, BatchBuilder
from ingest.decode import Decoder
from ingest.limits import Limits
from ingest.reasons import Reason

NOW_MS = 1_763_762_999_000
LIMITS = Limits(max_metrics_per_reading=3)


def _builder() -> BatchBuilder:
    return BatchBuilder(Decoder(limits=LIMITS), LIMITS)


def _add(builder: BatchBuilder, gateway: str, seq: int, readings: list[dict[str, object]]) -> None:
    payload = msgspec.json.encode({"gateway_id": gateway, "seq": seq, "readings": readings})
    builder.add(f"city/v1/gateways/{gateway}/telemetry", payload, NOW_MS * 1000)


def _columns(builder: BatchBuilder | Batch, kinds: dict[str, str | None] | None = None):  # type: ignore[no-untyped-def]
    batch = builder.finish() if isinstance(builder, BatchBuilder) else builder
    names = sorted(set(batch.r_device))
    key = {n: i + 1 for i, n in enumerate(names)}
    kind_by_key = np.zeros(len(names) + 1, dtype=np.int8)
    for n, k in (kinds or {}).items():
        kind_by_key[key[n]] = kind_code(k)
    devices = np.array([key[d] for d in batch.r_device], dtype=np.int32)
    gateways = {g: i + 1 for i, g in enumerate(sorted(set(batch.msg_gateway)))}
    return batch.columns(gateways, devices, kind_by_key, NOW_MS * 1000), key


def test_valid_values_become_columns_in_order() -> None:
    b = _builder()
    _add(
        b,
        "gw-1",
        1,
        [
            {"device_id": "sl-1", "ts": NOW_MS, "metrics": {"power_w": 40, "dim_pct": 50}},
            {"device_id": "sl-2", "ts": NOW_MS - 1, "metrics": {"power_w": 41}},
        ],
    )
    _add(b, "gw-2", 9, [{"device_id": "tr-1", "ts": NOW_MS, "metrics": {"speed_kmh": 33.5}}])
    cols, key = _columns(b)
    v = cols.values
    assert v.value.tolist() == [40.0, 50.0, 41.0, 33.5]
    assert v.metric.tolist() == [
        BY_NAME["power_w"].id,
        BY_NAME["dim_pct"].id,
        BY_NAME["power_w"].id,
        BY_NAME["speed_kmh"].id,
    ]
    assert v.device.tolist() == [key["sl-1"], key["sl-1"], key["sl-2"], key["tr-1"]]
    assert v.time_us.tolist() == [NOW_MS * 1000, NOW_MS * 1000, (NOW_MS - 1) * 1000, NOW_MS * 1000]
    assert v.message.tolist() == [0, 0, 0, 1]
    assert cols.messages.seq.tolist() == [1, 9]
    assert cols.dead_letters == []


def test_each_invalid_value_is_a_dead_letter_and_its_neighbours_are_kept() -> None:
    b = _builder()
    _add(
        b,
        "gw-1",
        1,
        [
            {
                "device_id": "sl-1",
                "ts": NOW_MS,
                "metrics": {"power_w": 40, "dim_pct": 150, "colour": 3},
            },
            {"device_id": "sl-1", "ts": NOW_MS + 3_600_000, "metrics": {"power_w": 40}},
            {"device_id": "sl-1", "ts": 5, "metrics": {"power_w": 40}},
            {
                "device_id": "sl-1",
                "ts": NOW_MS,
                "metrics": {"power_w": 1, "dim_pct": 1, "lamp_on": 1, "voltage_v": 120},
            },
            {"device_id": "sl-1", "ts": NOW_MS, "metrics": {"speed_kmh": 20, "energy_wh": 7}},
        ],
    )
    cols, _ = _columns(b, {"sl-1": "streetlight"})
    assert cols.values.value.tolist() == [40.0, 7.0]
    reasons = sorted(d.reason for d in cols.dead_letters)
    assert reasons == sorted(
        [
            Reason.OUT_OF_RANGE,
            Reason.UNKNOWN_METRIC,
            Reason.TIME_IN_FUTURE,
            Reason.TIME_TOO_EARLY,
            Reason.TOO_MANY_METRICS,
            Reason.METRIC_NOT_OF_KIND,
        ]
    )
    out_of_range = next(d for d in cols.dead_letters if d.reason == Reason.OUT_OF_RANGE)
    assert out_of_range.detail == "dim_pct = 150.0 outside [0, 100] %"
    assert msgspec.json.decode(out_of_range.payload)["metric"] == "dim_pct"
    assert cols.out_of_range.value.tolist() == [150.0]  # for the range detector
    assert {(d.gateway_id, d.seq, d.message) for d in cols.dead_letters} == {("gw-1", 1, 0)}


def test_non_finite_values_from_messagepack_are_dead_letters() -> None:
    b = _builder()
    payload = msgspec.msgpack.encode(
        {
            "gateway_id": "gw-1",
            "seq": 1,
            "readings": [
                {
                    "device_id": "e-1",
                    "ts": NOW_MS,
                    "metrics": {
                        "temperature_c": float("nan"),
                        "humidity_pct": float("inf"),
                        "no2_ppb": 12.0,
                    },
                }
            ],
        }
    )
    b.add("city/v1/gateways/gw-1/telemetry/msgpack", payload, NOW_MS * 1000)
    cols, _ = _columns(b)
    assert cols.values.value.tolist() == [12.0]
    assert [d.reason for d in cols.dead_letters] == [Reason.NOT_FINITE] * 2
    assert len(cols.out_of_range) == 0  # not finite is not out of range


def test_only_values_dead_lettered_as_out_of_range_reach_the_range_detector() -> None:
    b = _builder()
    _add(
        b,
        "gw-1",
        1,
        [{"device_id": "sl-1", "ts": NOW_MS, "metrics": {"occupancy_pct": 150, "dim_pct": -5}}],
    )
    cols, _ = _columns(b, {"sl-1": "streetlight"})
    reasons = {msgspec.json.decode(d.payload)["metric"]: d.reason for d in cols.dead_letters}
    assert reasons == {"occupancy_pct": Reason.METRIC_NOT_OF_KIND, "dim_pct": Reason.OUT_OF_RANGE}
    assert cols.out_of_range.value.tolist() == [-5.0]


def test_a_message_twice_in_one_batch_is_kept_once() -> None:
    b = _builder()
    for _ in range(3):
        _add(b, "gw-1", 4, [{"device_id": "sl-1", "ts": NOW_MS, "metrics": {"power_w": 1}}])
    _add(b, "gw-1", 4, [{"device_id": "sl-1", "ts": NOW_MS, "metrics": {"power_w": 2}}])
    batch = b.finish()
    assert batch.duplicates == 2
    assert [d.reason for d in batch.dead_letters] == [Reason.CONFLICTING_DUPLICATE]
    b = _builder()
    for _ in range(3):
        _add(b, "gw-1", 4, [{"device_id": "sl-1", "ts": NOW_MS, "metrics": {"power_w": 1}}])
    cols, _ = _columns(b)
    assert len(cols.messages) == 1 and len(cols.values) == 1


def test_columns_can_be_recomputed_for_a_retry_without_doubling_dead_letters() -> None:
    b = _builder()
    _add(b, "gw-1", 1, [{"device_id": "sl-1", "ts": NOW_MS, "metrics": {"power_w": -5}}])
    batch = b.finish()
    first, _ = _columns(batch)
    again, _ = _columns(batch)
    assert len(first.dead_letters) == len(again.dead_letters) == 1


def test_topics_outside_the_contract_are_dead_letters() -> None:
    b = _builder()
    b.add("city/v1/gateways/gw-1/firmware", b"x", 0)
    b.add("elsewhere", b"x", 0)
    assert [d.reason for d in b.finish().dead_letters] == [Reason.INVALID_TOPIC] * 2


def test_a_retained_invalid_status_is_dead_lettered_once_per_run() -> None:
    seen: set[int] = set()
    reasons: list[list[str]] = []
    for _ in range(3):  # three resubscribes hand it three times
        b = BatchBuilder(Decoder(limits=LIMITS), LIMITS, retained_seen=seen)
        b.add("city/v1/gateways/gw-1/status", b"maybe", NOW_MS * 1000, retain=True)
        b.add("city/v1/gateways/gw-1/status", b"online", NOW_MS * 1000, retain=True)
        batch = b.finish()
        assert batch.statuses["gw-1"][0] == "online"  # a valid one applies every time
        reasons.append([d.reason for d in batch.dead_letters])
    assert reasons == [[Reason.INVALID_STATUS], [], []]
