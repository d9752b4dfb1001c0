"""A real Mosquitto with TLS, passwords and the ACL that ``citytel provision`` writes."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest

from citytel.local import LocalMosquitto
from devices.contract import topic
from ingest.config import Broker, IngesterConfig
from ingest.ingester import Ingester
from tests.helpers import T0_MS, query, reading, telemetry, wait_until


def _certificates(d: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1."""

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=citytel test CA",
    )
    run(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    )
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    )
    return d / "ca.crt", d / "server.crt", d / "server.key"


def _provision(role: str, name: str, d: Path) -> str:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "citytel.cli",
            "provision",
            role,
            name,
            "--password-file",
            str(d / "passwd"),
            "--acl-file",
            str(d / "acl"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.split("password: ")[1].split()[0]


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[tuple[LocalMosquitto, dict[str, str], Path]]:
    passwords = {
        name: _provision(role, name, tmp_path)
        for role, name in (("ingester", "citytel-ingest"), ("gateway", "gw-a"), ("gateway", "gw-b"))
    }
    tls = _certificates(tmp_path)
    broker = LocalMosquitto(
        tmp_path / "mosquitto",
        password_file=tmp_path / "passwd",
        acl_file=tmp_path / "acl",
        tls=tls,
    )
    with broker:
        yield broker, passwords, tls[0]


def _client(
    broker: LocalMosquitto, ca: Path, user: str | None = None, password: str | None = None
) -> aiomqtt.Client:
    return aiomqtt.Client(
        "127.0.0.1",
        broker.port,
        username=user,
        password=password,
        protocol=aiomqtt.ProtocolVersion.V5,
        tls_context=ssl.create_default_context(cafile=str(ca)),
    )


def test_provisioning_writes_one_acl_block_per_user(tmp_path: Path) -> None:
    _provision("gateway", "gw-7", tmp_path)
    _provision("gateway", "gw-7", tmp_path)  # a reset: new password, same ACL block
    assert (tmp_path / "acl").read_text() == "user gw-7\ntopic write city/v1/gateways/gw-7/#\n"
    lines = (tmp_path / "passwd").read_text().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gw-7:$7$")  # hashed, never plain


async def test_a_gateway_speaks_only_for_itself_and_strangers_stay_out(
    secured: tuple[LocalMosquitto, dict[str, str], Path], database_url: str
) -> None:
    broker, passwords, ca = secured
    ingester = Ingester(
        database_url=database_url,
        config=IngesterConfig(client_id="citytel-ingest-1"),
        broker=Broker(
            port=broker.port,
            username="citytel-ingest",
            password=passwords["citytel-ingest"],
            tls=True,
            ca_file=str(ca),
        ),
    )
    own = telemetry("gw-a", 1, [reading("sl-a", T0_MS, power_w=10.0)])
    as_b = telemetry("gw-b", 1, [reading("sl-b", T0_MS, power_w=20.0)])
    async with ingester:
        # Mosquitto may drop the connection of a client that publishes where it may not:
        # each attempt gets a connection of its own.
        attempts = [
            ("gw-a", topic("gw-a", "telemetry"), own),
            ("gw-a", topic("gw-b", "telemetry"), as_b),  # denied by the ACL
            ("gw-a", topic("gw-a", "telemetry"), as_b),  # B's payload on A's topic
            ("citytel-ingest", topic("gw-b", "telemetry"), as_b),
        ]  # may only read
        for user, where, payload in attempts:
            with contextlib.suppress(aiomqtt.MqttError):
                async with _client(broker, ca, user, passwords[user]) as client:
                    await client.publish(where, payload, qos=1)
        with pytest.raises(aiomqtt.MqttError):
            async with _client(broker, ca):  # anonymous
                pass
        with pytest.raises(aiomqtt.MqttError):
            async with _client(broker, ca, "gw-a", "not-the-password"):
                pass

        async def two_in() -> bool:
            return ingester.stats.deliveries >= 2

        await wait_until(two_in)
        await asyncio.sleep(0.5)  # a denied message would have arrived by now
        assert ingester.stats.deliveries == 2
    stored = await query(
        database_url,
        "SELECT d.device_id, r.value FROM readings r JOIN devices d ON d.id = r.device",
    )
    assert stored == [("sl-a", 10.0)]
    letters = await query(database_url, "SELECT reason, topic FROM dead_letters")
    assert letters == [("gateway_mismatch", "city/v1/gateways/gw-a/telemetry")]
