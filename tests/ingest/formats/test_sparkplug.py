from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.formats import FormatReason
from ingest.formats.mapping import MappingFile
from ingest.formats.sparkplug import REBIRTH, Parser, subscriptions
from ingest.formats.sparkplug_b import DataType, Metric, Payload
from ingest.formats.units import CATALOG_UNITS
from ingest.reasons import Reason
from tests.ingest.formats.hostile import check_invariants

T0 = 1_764_800_000_000  # ms


# A wire encoder written from the specification's field table, independent of
# sparkplug_b.py, so that the parser is tested against the field numbers themselves.
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _key(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _len(number: int, data: bytes) -> bytes:
    return _key(number, 2) + _varint(len(data)) + data


def wire_metric(
    name: str | None = None, alias: int | None = None, datatype: int = 0, **value: object
) -> bytes:
    out = b""
    if name is not None:
        out += _len(1, name.encode())
    if alias is not None:
        out += _key(2, 0) + _varint(alias)
    if datatype:
        out += _key(4, 0) + _varint(datatype)
    for kind, v in value.items():
        if kind == "int_value":
            out += _key(10, 0) + _varint(int(v))  # type: ignore[call-overload]
        elif kind == "long_value":
            out += _key(11, 0) + _varint(int(v))  # type: ignore[call-overload]
        elif kind == "double_value":
            out += _key(13, 1) + struct.pack("<d", v)
        elif kind == "boolean_value":
            out += _key(14, 0) + _varint(int(bool(v)))
        elif kind == "string_value":
            out += _len(15, str(v).encode())
    return out


def wire_payload(timestamp: int, seq: int | None, *metrics: bytes) -> bytes:
    out = _key(1, 0) + _varint(timestamp)
    for m in metrics:
        out += _len(2, m)
    if seq is not None:
        out += _key(3, 0) + _varint(seq)
    return out


NBIRTH = wire_payload(
    T0,
    0,
    wire_metric("bdSeq", datatype=DataType.INT64, long_value=3),
    wire_metric(REBIRTH, datatype=DataType.BOOLEAN, boolean_value=False),
    wire_metric("temperature_c", alias=1, datatype=DataType.DOUBLE, double_value=21.5),
    wire_metric("Properties/Hardware Make", alias=2, datatype=DataType.STRING, string_value="Acme"),
)


def topic(kind: str, device: str | None = None, edge: str = "edge-1") -> str:
    tail = f"/{device}" if device else ""
    return f"spBv1.0/plant/{kind}/{edge}{tail}"


def ndata(seq: int, *metrics: bytes, ts: int = T0 + 1000) -> bytes:
    return wire_payload(ts, seq, *metrics)


def born() -> Parser:
    parser = Parser()
    parsed = parser.parse(topic("NBIRTH"), NBIRTH)
    assert parsed.status == "online"
    return parser


def test_nbirth_stores_its_values_learns_aliases_and_refuses_strings() -> None:
    parsed = Parser().parse(topic("NBIRTH"), NBIRTH)
    assert parsed.gateway_id == "edge-1" and parsed.status == "online"
    [reading] = parsed.readings
    assert (reading.device_id, reading.ts, reading.metrics) == (
        "edge-1",
        T0,
        {"temperature_c": 21.5},
    )
    assert [(r.reason, r.field) for r in parsed.refusals] == [
        (FormatReason.UNSUPPORTED, "Properties/Hardware Make")
    ]
    assert parsed.replies == []


def test_ndata_by_alias_maps_to_the_birth_name() -> None:
    parser = born()
    parsed = parser.parse(topic("NDATA"), ndata(1, wire_metric(alias=1, double_value=22.0)))
    assert parsed.refusals == [] and parsed.replies == []
    assert parsed.readings[0].metrics == {"temperature_c": 22.0}


def test_unknown_alias_is_refused_and_a_rebirth_requested_once() -> None:
    parser = born()
    parsed = parser.parse(topic("NDATA"), ndata(1, wire_metric(alias=9, double_value=1.0)))
    assert [r.reason for r in parsed.refusals] == [FormatReason.UNKNOWN_ALIAS]
    [(reply_topic, body)] = parsed.replies
    assert reply_topic == "spBv1.0/plant/NCMD/edge-1"
    [metric] = Payload.FromString(body).metrics
    assert (metric.name, metric.datatype, metric.boolean_value) == (REBIRTH, 11, True)
    again = parser.parse(topic("NDATA"), ndata(2, wire_metric(alias=9, double_value=1.0)))
    assert again.replies == [] and again.refusals
    reborn = parser.parse(topic("NBIRTH"), NBIRTH)
    assert reborn.status == "online"
    after = parser.parse(topic("NDATA"), ndata(1, wire_metric(alias=8, double_value=1.0)))
    assert len(after.replies) == 1  # a new session may ask again


def test_data_from_a_node_never_seen_born_asks_for_a_rebirth_but_keeps_named_metrics() -> None:
    parsed = Parser().parse(topic("NDATA"), ndata(5, wire_metric("dim_pct", double_value=40)))
    assert len(parsed.replies) == 1
    assert parsed.readings[0].metrics == {"dim_pct": 40.0}


def test_seq_gap_asks_for_a_rebirth_a_repeat_does_not() -> None:
    parser = born()
    one = ndata(1, wire_metric(alias=1, double_value=1.0))
    assert parser.parse(topic("NDATA"), one).replies == []
    assert parser.parse(topic("NDATA"), one).replies == []  # redelivered copy
    gap = parser.parse(topic("NDATA"), ndata(7, wire_metric(alias=1, double_value=1.0)))
    assert len(gap.replies) == 1 and gap.readings  # the data itself is good
    wrap = Parser()
    wrap.parse(topic("NBIRTH"), NBIRTH)
    for seq in [*range(1, 256), 0, 1]:
        assert (
            wrap.parse(topic("NDATA"), ndata(seq, wire_metric(alias=1, double_value=1))).replies
            == []
        )


def test_device_birth_data_and_death() -> None:
    mapping = MappingFile.model_validate({"source": {"plant": {"kind": "environment"}}})
    parser = Parser(mapping=mapping)
    parser.parse(topic("NBIRTH"), NBIRTH)
    birth = wire_payload(
        T0,
        1,
        wire_metric("noise_dba", alias=20, datatype=DataType.FLOAT, double_value=55.0),
        wire_metric("temperature_c", alias=21, datatype=DataType.INT16, int_value=0xFFFFFFFB),
    )
    parsed = parser.parse(topic("DBIRTH", "meter-7"), birth)
    assert (parsed.status, parsed.status_device) == ("online", "meter-7")
    assert [d.kind for d in parsed.devices] == ["environment"]
    assert parsed.readings[0].metrics == {"noise_dba": 55.0, "temperature_c": -5.0}
    data = parser.parse(
        topic("DDATA", "meter-7"), ndata(2, wire_metric(alias=21, int_value=0xFFFF))
    )  # 16-bit -1
    assert data.readings[0].device_id == "meter-7"
    assert data.readings[0].metrics == {"temperature_c": -1.0}
    death = parser.parse(topic("DDEATH", "meter-7"), wire_payload(T0 + 5, 3))
    assert (death.status, death.status_device) == ("offline", "meter-7")


def test_ndeath_of_the_current_session_sets_offline_a_stale_one_does_not() -> None:
    parser = born()
    stale = wire_payload(T0, None, wire_metric("bdSeq", datatype=4, long_value=2))
    assert parser.parse(topic("NDEATH"), stale).status is None
    current = wire_payload(T0, None, wire_metric("bdSeq", datatype=4, long_value=3))
    assert parser.parse(topic("NDEATH"), current).status == "offline"


def test_identity_survives_a_restart_and_differs_between_messages() -> None:
    msg = ndata(1, wire_metric(alias=1, double_value=1.0))
    a = born().parse(topic("NDATA"), msg).identity
    b = Parser().parse(topic("NDATA"), msg).identity  # a fresh ingester, no state
    c = born().parse(topic("NDATA"), ndata(2, wire_metric(alias=1, double_value=1.0))).identity
    assert a == b != c


def test_refusals_of_whole_messages() -> None:
    parser = Parser()
    assert [r.reason for r in parser.parse("spBv1.0/plant/NCMD/edge-1", b"").refusals] == [
        Reason.INVALID_TOPIC
    ]
    assert [r.reason for r in parser.parse(topic("NDATA"), b"\xff\xff\xff").refusals] == [
        Reason.MALFORMED
    ]
    bad_id = parser.parse(topic("NBIRTH", edge="edge 1"), NBIRTH)
    assert [r.reason for r in bad_id.refusals] == [FormatReason.INVALID_ID]
    no_seq = born().parse(
        topic("NDATA"), wire_payload(T0, None, wire_metric(alias=1, double_value=1))
    )
    assert Reason.INVALID_MESSAGE in {r.reason for r in no_seq.refusals}


def test_state_is_bounded() -> None:
    parser = Parser(max_nodes=3)
    for i in range(10):
        parser.parse(topic("NBIRTH", edge=f"edge-{i}"), NBIRTH)
    assert len(parser._nodes) == 3


def test_subscriptions() -> None:
    assert "spBv1.0/+/DDATA/+/+" in subscriptions() and "spBv1.0/+/NBIRTH/+" in subscriptions()


metrics = st.builds(
    lambda name, alias, datatype, value: Metric(
        **{k: v for k, v in (("name", name), ("alias", alias)) if v is not None},
        datatype=datatype,
        **value,
    ),
    st.none() | st.sampled_from(["temperature_c", "bdSeq", "x", "", REBIRTH]),
    st.none() | st.integers(0, 2**64 - 1),
    st.integers(0, 40),
    st.sampled_from([{}])
    | st.builds(lambda v: {"int_value": v}, st.integers(0, 2**32 - 1))
    | st.builds(lambda v: {"long_value": v}, st.integers(0, 2**64 - 1))
    | st.builds(lambda v: {"double_value": v}, st.floats())
    | st.builds(lambda v: {"float_value": v}, st.floats(width=32))
    | st.builds(lambda v: {"string_value": v}, st.text(max_size=5)),
)
messages = st.tuples(
    st.sampled_from(["NBIRTH", "NDATA", "NDEATH", "DBIRTH", "DDATA", "DDEATH"]),
    st.builds(
        lambda ts, seq, ms: Payload(timestamp=ts, seq=seq, metrics=ms),
        st.integers(0, 2**64 - 1),
        st.integers(0, 2**64 - 1),
        st.lists(metrics, max_size=5),
    ),
)


@settings(max_examples=300, deadline=None)
@given(sequence=st.lists(messages, max_size=8))
def test_parse_never_raises_on_any_sequence_of_messages(sequence: list[tuple[str, object]]) -> None:
    parser = Parser()
    for kind, payload in sequence:
        device = "dev-1" if kind.startswith("D") else None
        parsed = parser.parse(topic(kind, device), payload.SerializeToString(), T0 * 1000)  # type: ignore[attr-defined]
        check_invariants(parsed, CATALOG_UNITS)


@settings(max_examples=200, deadline=None)
@given(payload=st.binary(max_size=300), kind=st.sampled_from(["NBIRTH", "NDATA", "NDEATH"]))
def test_parse_never_raises_on_junk(payload: bytes, kind: str) -> None:
    check_invariants(Parser().parse(topic(kind), payload), CATALOG_UNITS)


def test_without_a_payload_timestamp_identity_falls_back_to_the_payload() -> None:
    def untimed(seq: int, value: float) -> bytes:  # a payload without field 1
        return _len(2, wire_metric("dim_pct", double_value=value)) + _key(3, 0) + _varint(seq)

    parser = born()
    a = parser.parse(topic("NDATA"), untimed(1, 10.0), T0 * 1000)
    again = Parser().parse(topic("NDATA"), untimed(1, 10.0), T0 * 1000)
    wrapped = parser.parse(topic("NDATA"), untimed(1, 11.0), T0 * 1000)  # seq 1, 256 later
    assert a.identity == again.identity != wrapped.identity
    assert a.readings[0].ts == T0  # the arrival time


def test_an_unanswered_rebirth_request_is_sent_again_after_100_asking_messages() -> None:
    parser = born()
    replies = [
        len(
            parser.parse(
                topic("NDATA"), ndata(seq % 256, wire_metric(alias=9, double_value=1))
            ).replies
        )
        for seq in range(1, 103)
    ]
    assert replies[0] == 1 and replies[1:101] == [0] * 100 and replies[101] == 1


def test_a_device_birth_from_a_node_not_seen_born_asks_for_a_rebirth() -> None:
    birth = wire_payload(T0, 1, wire_metric("noise_dba", alias=20, datatype=DataType.FLOAT,
                                            double_value=55.0))  # fmt: skip
    parsed = Parser().parse(topic("DBIRTH", "meter-7"), birth)
    assert len(parsed.replies) == 1 and parsed.status == "online"
    assert parsed.readings[0].metrics == {"noise_dba": 55.0}


def test_host_state_message() -> None:
    import json

    from ingest.formats.sparkplug import host_state

    topic_name, body = host_state("citytel", online=True, timestamp_ms=T0, prefix="p/")
    assert topic_name == "p/spBv1.0/STATE/citytel"
    assert json.loads(body) == {"online": True, "timestamp": T0}


def test_null_and_transient_metrics_are_not_stored() -> None:
    transient = wire_metric("dim_pct", double_value=5.0) + _key(6, 0) + _varint(1)
    null = wire_metric("power_w", datatype=DataType.DOUBLE) + _key(7, 0) + _varint(1)
    parsed = born().parse(
        topic("NDATA"), ndata(1, transient, null, wire_metric("noise_dba", double_value=40.0))
    )
    assert parsed.refusals == []
    assert [r.metrics for r in parsed.readings] == [{"noise_dba": 40.0}]
