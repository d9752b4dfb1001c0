"""The format parsers alone (ingest/formats/), against json.loads of the same content.

    python -m bench.formats [--messages 20000] [--repeat 5]

Per format, messages as the simulators would send them: a LoRaWAN uplink (ChirpStack,
The Things Stack) carries one reading of 4 decoded fields (messages/s is the figure that
matters there); a Sparkplug B DDATA and a SenML pack carry 50 values. The baseline is
``json.loads`` of the same content in JSON (for Sparkplug and SenML CBOR, the JSON form of
the same metrics), i.e. the least any JSON-based path must spend. Best of ``--repeat``,
parser and baseline taking turns.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import cbor2

from ingest.formats import Parsed, chirpstack, senml, sparkplug, tts
from ingest.formats.sparkplug_b import DataType, Metric, Payload

T0 = 1_764_800_000_000
APP = "17c82e96-be03-4f38-aef3-f83d48582d97"
NOW_US = T0 * 1000
VALUES = 50


def chirpstack_case(i: int) -> tuple[str, bytes, bytes]:
    event = {
        "deduplicationId": f"3ac7e3c4-4401-4b8d-9386-{i:012d}",
        "time": "2025-12-04T02:00:00.123456789+00:00",
        "deviceInfo": {"tenantId": "t", "applicationId": APP, "applicationName": "parking",
                       "deviceName": f"d{i}", "devEui": f"{i:016x}", "tags": {}},
        "devAddr": "00189440", "dr": 5, "fCnt": i, "fPort": 1, "data": "qg==",
        "object": {"temperature_c": 21.5, "humidity_pct": 48, "pressure_hpa": 1013.2,
                   "noise_dba": 55.0},
        "rxInfo": [{"gatewayId": "0016c001f153a14c", "uplinkId": i, "rssi": -60, "snr": 7.5,
                    "context": "E3OWOQ=="}],
        "txInfo": {"frequency": 868100000},
    }  # fmt: skip
    body = json.dumps(event).encode()
    return f"application/{APP}/device/{i:016x}/event/up", body, body


def tts_case(i: int) -> tuple[str, bytes, bytes]:
    message = {
        "end_device_ids": {"device_id": f"dev{i}", "application_ids": {"application_id": "app1"},
                           "dev_eui": f"{i:016X}"},
        "correlation_ids": [f"as:up:01E0Q1AA6W6PX7VKXN{i:08d}"],
        "received_at": "2025-12-04T02:00:00.123Z",
        "uplink_message": {"f_port": 1, "f_cnt": i, "frm_payload": "vu8=",
                           "decoded_payload": {"temperature_c": 21.5, "humidity_pct": 48,
                                               "pressure_hpa": 1013.2, "noise_dba": 55.0},
                           "rx_metadata": [{"rssi": -60, "snr": 7.5}],
                           "received_at": "2025-12-04T02:00:00.120Z"},
    }  # fmt: skip
    body = json.dumps(message).encode()
    return f"v3/app1@ttn/devices/dev{i}/up", body, body


_SPARK_METRICS = ("temperature_c", "humidity_pct", "pressure_hpa", "pm2_5_ugm3", "pm10_ugm3",
                  "no2_ppb", "o3_ppb", "noise_dba", "power_w", "dim_pct")  # fmt: skip


def sparkplug_case(i: int) -> tuple[str, bytes, bytes]:
    # 10 metrics x 5 metric timestamps = 50 values (an edge node sending a short history)
    n = len(_SPARK_METRICS)
    metrics = [(k % n + 1, T0 + i * 1000 + (k // n) * 200, 20.0 + k) for k in range(VALUES)]
    payload = Payload(
        timestamp=T0 + i * 1000,
        seq=(i + 1) % 256,
        metrics=[Metric(alias=a, timestamp=t, double_value=v) for a, t, v in metrics],
    )
    rows = [{"alias": a, "timestamp": t, "value": v} for a, t, v in metrics]
    as_json = {"timestamp": T0 + i * 1000, "seq": (i + 1) % 256, "metrics": rows}
    return "spBv1.0/plant/DDATA/edge-1/meter-1", payload.SerializeToString(), _j(as_json)


def _birth() -> bytes:
    return Payload(
        timestamp=T0,
        seq=0,
        metrics=[Metric(name="bdSeq", datatype=DataType.INT64, long_value=0)]
        + [
            Metric(name=n, alias=a + 1, datatype=DataType.DOUBLE, double_value=1.0)
            for a, n in enumerate(_SPARK_METRICS)
        ],
    ).SerializeToString()


def senml_records(i: int) -> list[dict[str, object]]:
    names = ["temperature", "humidity", "pressure", "noise", "pm2_5"]
    units = ["Cel", "%RH", "hPa", "dBA", "ug/m3"]
    values = [21.5, 48.0, 1013.2, 55.0, 12.0]
    records: list[dict[str, object]] = [{"bn": f"env-{i % 1000}:", "bt": 1.7649e9 + i}]
    for k in range(VALUES):
        records.append({"n": names[k % 5], "u": units[k % 5], "v": values[k % 5], "t": -k // 5})
    return records


def senml_case(i: int) -> tuple[str, bytes, bytes]:
    body = _j(senml_records(i))
    return "city/v1/gateways/gw-1/senml", body, body


def senml_cbor_case(i: int) -> tuple[str, bytes, bytes]:
    labels = {"bn": -2, "bt": -3, "n": 0, "u": 1, "v": 2, "t": 6}
    records = senml_records(i)
    body = cbor2.dumps([{labels[k]: v for k, v in r.items()} for r in records])
    return "city/v1/gateways/gw-1/senml/cbor", body, _j(records)


def _j(value: object) -> bytes:
    return json.dumps(value).encode()


def timed(fns: tuple[Callable[[], object], ...], repeat: int) -> list[float]:
    """Best time of each function, the functions taking turns (a shared machine's noise
    then falls on both sides of a ratio alike)."""
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def run(name: str, parser: object, case: Callable[[int], tuple[str, bytes, bytes]],
        messages: int, repeat: int, per_message: int) -> None:  # fmt: skip
    cases = [case(i) for i in range(messages)]
    parse = parser.parse  # type: ignore[attr-defined]
    parsed: Parsed = parse(cases[0][0], cases[0][1], NOW_US)
    values = sum(len(r.metrics) for r in parsed.readings)
    assert values == per_message and not parsed.refusals, (name, parsed.refusals[:3])

    def ours() -> None:
        for topic, body, _ in cases:
            parse(topic, body, NOW_US)

    def baseline() -> None:
        for _, _, body in cases:
            json.loads(body)

    t_ours, t_base = timed((ours, baseline), repeat)
    print(
        f"{name:12s} {values:3d} values/msg  {messages / t_ours:10,.0f} msg/s "
        f"{messages * values / t_ours:12,.0f} values/s  | json.loads {messages / t_base:10,.0f}"
        f" msg/s  ratio parse/json.loads {t_ours / t_base:5.2f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    n, r = args.messages, args.repeat
    spark = sparkplug.Parser()
    spark.parse("spBv1.0/plant/NBIRTH/edge-1", _birth(), NOW_US)
    run("chirpstack", chirpstack.Parser(), chirpstack_case, n, r, 4)
    run("tts", tts.Parser(), tts_case, n, r, 4)
    run("sparkplug", spark, sparkplug_case, n, r, VALUES)
    run("senml", senml.Parser(), senml_case, n, r, VALUES)
    run("senml/cbor", senml.Parser(), senml_cbor_case, n, r, VALUES)


if __name__ == "__main__":
    main()
