"""The naive baseline: a paho-mqtt subscriber doing one INSERT per value.

It is what one writes first: auto-acked QoS 1, json.loads, one INSERT per value and a
commit per message. Run as ``python -m bench.naive_ingest MQTT_PORT DATABASE_URL``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import paho.mqtt.client as paho
import psycopg
from paho.mqtt.enums import CallbackAPIVersion


def main() -> None:
    port, database_url = int(sys.argv[1]), sys.argv[2]
    conn = psycopg.connect(database_url)
    conn.execute(
        "CREATE TABLE IF NOT EXISTS naive_readings"
        " (time timestamptz, device_id text, metric text, value float8)"
    )
    conn.commit()

    def on_message(client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        body = json.loads(message.payload)
        with conn.cursor() as cur:
            for r in body["readings"]:
                for metric, value in r["metrics"].items():
                    cur.execute(
                        "INSERT INTO naive_readings VALUES (to_timestamp(%s / 1000.0), %s, %s, %s)",
                        (r["ts"], r["device_id"], metric, value),
                    )
        conn.commit()

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-naive", protocol=paho.MQTTv5)
    client.on_message = on_message
    client.on_connect = lambda c, *a: c.subscribe("city/v1/gateways/+/telemetry", qos=1)
    client.connect("127.0.0.1", port)
    client.loop_forever()


if __name__ == "__main__":
    main()
