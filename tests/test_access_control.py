"""A real Mosquitto started with the shipped configuration (deploy/mosquitto/mosquitto.conf,
only paths and port adapted), with the passwords and ACL that ``citytel provision`` writes."""

from __future__ import annotations

import contextlib
import getpass
import shutil
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from citytel.local import free_port, wait_for_port
from devices.contract import topic
from ingest.config import Broker, IngesterConfig
from ingest.ingester import Ingester
from tests.helpers import T0_MS, delivered, query, reading, telemetry, wait_until

SHIPPED = Path(__file__).parent.parent / "deploy" / "mosquitto" / "mosquitto.conf"


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


class ShippedMosquitto:
    """Mosquitto running deploy/mosquitto/mosquitto.conf with its paths moved under ``d``
    (certificates, passwd and acl expected there) and its TLS listener on a free port."""

    def __init__(self, d: Path) -> None:
        self.port = free_port()
        conf = SHIPPED.read_text()
        for shipped, here in (
            ("listener 8883\n", f"listener {self.port} 127.0.0.1\n"),
            ("/etc/mosquitto/certs/", f"{d}/"),
            ("/etc/mosquitto/citytel/", f"{d}/"),
            ("/var/lib/mosquitto/", f"{d}/"),
        ):
            assert shipped in conf, f"the shipped configuration changed: {shipped!r} not found"
            conf = conf.replace(shipped, here)
        # Run as ourselves (as root, Mosquitto would switch to a user who cannot read d).
        conf += f"\nuser {getpass.getuser()}\nlog_dest file {d}/mosquitto.log\n"
        (d / "mosquitto.conf").write_text(conf)
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self._process = subprocess.Popen([binary, "-c", str(d / "mosquitto.conf")])
        wait_for_port(self.port, timeout=10, process=self._process, what="mosquitto")

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=10)


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[tuple[ShippedMosquitto, dict[str, str], Path]]:
    passwords = {
        name: _provision(role, name, tmp_path)
        for role, name in (
            ("ingester", "citytel-ingest"),
            ("ingester", "citytel-ingest-2"),  # a second ingester, as it shares the load
            ("gateway", "gw-a"),
            ("gateway", "gw-b"),
        )
    }
    ca, _, _ = _certificates(tmp_path)
    broker = ShippedMosquitto(tmp_path)
    try:
        yield broker, passwords, ca
    finally:
        broker.stop()


def _client(
    broker: ShippedMosquitto,
    ca: Path,
    user: str | None = None,
    password: str | None = None,
    **options: Any,
) -> aiomqtt.Client:
    return aiomqtt.Client(
        "127.0.0.1",
        broker.port,
        username=user,
        password=password,
        protocol=aiomqtt.ProtocolVersion.V5,
        tls_context=ssl.create_default_context(cafile=str(ca)),
        **options,
    )


def _ingester(broker: ShippedMosquitto, ca: Path, password: str, database_url: str) -> Ingester:
    # The client id it asks for differs from its user name: the broker uses the user name.
    return Ingester(
        database_url=database_url,
        config=IngesterConfig(client_id="citytel-ingest-1"),
        broker=Broker(
            port=broker.port,
            username="citytel-ingest",
            password=password,
            tls=True,
            ca_file=str(ca),
        ),
    )


def test_provisioning_writes_one_acl_block_per_user(tmp_path: Path) -> None:
    _provision("gateway", "gw-7", tmp_path)
    _provision("gateway", "gw-7", tmp_path)  # a reset: new password, same ACL block
    assert (tmp_path / "acl").read_text() == "user gw-7\ntopic write city/v1/gateways/gw-7/#\n"
    lines = (tmp_path / "passwd").read_text().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gw-7:$7$")  # hashed, never plain


def test_provisioning_never_gives_a_name_a_second_role(tmp_path: Path) -> None:
    _provision("ingester", "citytel-ingest", tmp_path)
    before = (tmp_path / "passwd").read_text(), (tmp_path / "acl").read_text()
    with pytest.raises(subprocess.CalledProcessError) as refused:
        _provision("gateway", "citytel-ingest", tmp_path)
    assert "already exists" in refused.value.stderr
    assert ((tmp_path / "passwd").read_text(), (tmp_path / "acl").read_text()) == before


async def test_a_gateway_speaks_only_for_itself_and_strangers_stay_out(
    secured: tuple[ShippedMosquitto, dict[str, str], Path], database_url: str
) -> None:
    broker, passwords, ca = secured
    ingester = _ingester(broker, ca, passwords["citytel-ingest"], database_url)
    own = telemetry("gw-a", 1, [reading("sl-a", T0_MS, power_w=10.0)])
    as_b = telemetry("gw-b", 1, [reading("sl-b", T0_MS, power_w=20.0)])
    async with ingester:
        # Mosquitto may drop the connection of a client that publishes where it may not:
        # each attempt gets a connection of its own.
        attempts = [
            ("gw-a", topic("gw-a", "telemetry"), own),
            ("gw-a", topic("gw-b", "telemetry"), as_b),  # denied by the ACL
            ("gw-a", topic("gw-a", "telemetry"), as_b),  # B's payload on A's topic
            ("citytel-ingest-2", topic("gw-b", "telemetry"), as_b),  # may only read
        ]
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

        # Positive evidence that nothing denied is still on its way: the broker acked each
        # attempt before its connection closed, and it delivers to the ingester's session in
        # the order it routed; so once this later message is in, every earlier one is.
        last = telemetry("gw-a", 2, [reading("sl-a", T0_MS + 1000, power_w=11.0)])
        async with _client(broker, ca, "gw-a", passwords["gw-a"]) as client:
            await client.publish(topic("gw-a", "telemetry"), last, qos=1)

        async def last_in() -> bool:
            seqs = "SELECT count(*) FROM messages WHERE seq = 2"
            return (await query(database_url, seqs))[0][0] == 1

        await wait_until(last_in)
        assert ingester.stats.deliveries == 3
    stored = await query(
        database_url,
        "SELECT d.device_id, r.value FROM metric_values r JOIN devices d ON d.id = r.device"
        " ORDER BY r.time",
    )
    assert stored == [("sl-a", 10.0), ("sl-a", 11.0)]
    letters = await query(database_url, "SELECT reason, topic FROM dead_letters")
    assert letters == [("gateway_mismatch", "city/v1/gateways/gw-a/telemetry")]


async def test_a_gateway_login_cannot_take_the_ingesters_client_id_or_session(
    secured: tuple[ShippedMosquitto, dict[str, str], Path], database_url: str
) -> None:
    broker, passwords, ca = secured
    ingester = _ingester(broker, ca, passwords["citytel-ingest"], database_url)
    gw_a = ("gw-a", passwords["gw-a"])
    stolen_ids = ("citytel-ingest", "citytel-ingest-1")  # its user name, the id it sends
    async with ingester:
        for seq, stolen in enumerate(stolen_ids, start=1):
            async with _client(broker, ca, *gw_a, identifier=stolen, clean_start=True) as thief:
                message = telemetry("gw-a", seq, [reading("sl-a", T0_MS + seq, power_w=1.0)])
                await thief.publish(topic("gw-a", "telemetry"), message, qos=1)
                await wait_until(lambda seq=seq: delivered(ingester, seq))
        # Taking the id over would have dropped the ingester, which then reconnects.
        assert ingester._subscription.reconnects == 0 and ingester._subscription.connected
    # The ingester is away; the broker queues for its persistent session...
    queued = [
        (
            topic("gw-b", "telemetry"),
            telemetry("gw-b", seq, [reading("sl-b", T0_MS + seq, power_w=2.0)]),
        )
        for seq in range(1, 51)
    ]
    async with _client(broker, ca, "gw-b", passwords["gw-b"]) as gateway:
        for where, payload in queued:
            await gateway.publish(where, payload, qos=1)  # each acknowledged by the broker
    # ...and a gateway that logs in with the ingester's ids and a clean start wipes nothing.
    for stolen in stolen_ids:
        async with _client(broker, ca, *gw_a, identifier=stolen, clean_start=True):
            pass
    ingester = _ingester(broker, ca, passwords["citytel-ingest"], database_url)
    async with ingester:
        await wait_until(lambda: delivered(ingester, len(queued)))
    stored = await query(
        database_url,
        "SELECT g.gateway_id, count(*) FROM messages m JOIN gateways g ON g.id = m.gateway"
        " GROUP BY 1 ORDER BY 1",
    )
    assert stored == [("gw-a", 2), ("gw-b", 50)]
    assert await query(database_url, "SELECT reason FROM dead_letters") == []
