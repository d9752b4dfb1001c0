"""Local Mosquitto and PostgreSQL servers in a directory of ours, for ``citytel up`` and tests.

Both are context managers that start the server on entry and stop it on exit. They use
the Debian packages' binaries (``mosquitto``, ``/usr/lib/postgresql/*/bin``). PostgreSQL
refuses to run as root, so as root the cluster is owned by and run as ``postgres``.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import glob
import json
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from devices.errors import ServerError

log = logging.getLogger(__name__)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on ``host``:``port``."""
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


class Ports:
    """The local servers' ports, chosen once and remembered in a JSON file under var/.

    So the URLs that ``citytel up`` prints (the database's, for ``citytel apikey create``;
    the broker's, for gateways) stay the same from one start to the next.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def remembered(self) -> dict[str, int]:
        try:
            found = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return {k: v for k, v in found.items() if isinstance(v, int)}

    def get(self, name: str, configured: int = 0) -> int:
        """``configured`` when set; else the port remembered for ``name``, or a free one
        (then remembered)."""
        if configured:
            return configured
        ports = self.remembered()
        port = ports.get(name)
        if port is None:
            port = ports[name] = free_port()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(ports, indent=2) + "\n")
        return port


def _ensure_free(port: int, what: str) -> None:
    if listening(port):
        raise ServerError(
            f"port {port} for the local {what} is in use: is citytel already running here"
            " (citytel status)? Otherwise stop what listens there, or choose another port"
            " (var/ports.json, or CITYTEL_LOCAL_PG_PORT / CITYTEL_LOCAL_MQTT_PORT)"
        )


def wait_for_port(
    port: int,
    *,
    timeout: float,
    process: subprocess.Popen[bytes] | None = None,
    what: str = "server",
) -> None:
    """Block until something accepts connections on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ServerError(f"{what} exited with code {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise ServerError(f"{what} did not listen on port {port} within {timeout:.0f} s")


def _postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version_key)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise ServerError("no PostgreSQL server found: install the Debian package 'postgresql'")


def _version_key(path: str) -> float:
    try:
        return float(Path(path).parts[-3])
    except ValueError:
        return 0.0


class LocalPostgres:
    """A PostgreSQL cluster in ``data_dir`` listening on 127.0.0.1:``port``.

    The cluster is created on first use and kept: a second start reuses its data.
    ``fsync=False`` trades crash safety for speed, for throwaway test clusters.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        fsync: bool = True,
        settings: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port or free_port()
        self._fsync = fsync
        self._settings = settings or {}
        self._bin = _postgres_bin()
        self._as_postgres = os.geteuid() == 0

    @property
    def url(self) -> str:
        return f"postgresql://citytel@127.0.0.1:{self.port}/citytel"

    def url_for(self, dbname: str) -> str:
        return f"postgresql://citytel@127.0.0.1:{self.port}/{dbname}"

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        elif self.pid() is not None:
            log.warning("stopping the PostgreSQL left running in %s", self.data_dir)
            self.stop()
        _ensure_free(self.port, "PostgreSQL")
        options = [
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            f"-c unix_socket_directories={self.data_dir}",
            f"-c fsync={'on' if self._fsync else 'off'}",
        ]
        options += [f"-c {k}={v}" for k, v in self._settings.items()]
        self._run(
            "pg_ctl",
            "start",
            "-w",
            "-t",
            "60",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.data_dir / "server.log"),
            "-o",
            " ".join(options),
        )
        self._create_database("citytel")
        log.info("PostgreSQL listening on 127.0.0.1:%d (%s)", self.port, self.data_dir)

    def pid(self) -> int | None:
        """The postmaster's process id, while it runs."""
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if _alive(pid) else None

    async def watch(self, every_s: float = 1.0) -> None:
        """Return when the server has stopped (it should not, before ``stop``)."""
        pid = self.pid()
        # polled: the postmaster is no child of ours (pg_ctl starts it), nothing to await
        while pid is not None and _alive(pid):  # noqa: ASYNC110
            await asyncio.sleep(every_s)
        raise ServerError(f"PostgreSQL exited; see {self.data_dir / 'server.log'}")

    def stop(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            self._run("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.data_dir), check=False)

    def create_database(self, name: str, *, template: str | None = None) -> str:
        """Create database ``name`` (optionally as a copy of ``template``); its URL."""
        self._create_database(name, template=template)
        return self.url_for(name)

    def _create_database(self, name: str, *, template: str | None = None) -> None:
        args = ["-h", "127.0.0.1", "-p", str(self.port), "-U", "citytel"]
        if template:
            args += ["-T", template]
        exists = subprocess.run(
            [
                str(self._bin / "psql"),
                *args[:6],
                "-d",
                "postgres",
                "-tAc",
                f"SELECT 1 FROM pg_database WHERE datname = '{name}'",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if exists.stdout.strip() != "1":
            self._run("createdb", *args, name)

    def _initdb(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._as_postgres:
            user = pwd.getpwnam("postgres")
            os.chown(self.data_dir, user.pw_uid, user.pw_gid)
            self._check_reachable()
        self._run(
            "initdb",
            "-D",
            str(self.data_dir),
            "-U",
            "citytel",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-instructions",
        )

    def _check_reachable(self) -> None:
        """PostgreSQL runs as user postgres: it must be able to pass through every folder
        above its data. A folder of root's own that it cannot pass (a ``mktemp -d``
        checkout, say) is given search permission for others, no more (``o+x``: passing
        through, not listing); one of another user's is left alone, with the command."""
        for parent in self.data_dir.parents:
            info = parent.stat()
            if info.st_mode & 0o001:
                continue
            if info.st_uid == os.getuid() == 0:
                parent.chmod(info.st_mode & 0o7777 | 0o001)
                log.warning("gave %s o+x, so that PostgreSQL (user postgres) can reach %s",
                            parent, self.data_dir)  # fmt: skip
            else:
                raise ServerError(
                    f"PostgreSQL runs as user postgres and cannot reach {self.data_dir}:"
                    f" {parent} is not searchable by others (chmod o+x {parent})"
                )

    def _run(self, program: str, *args: str, check: bool = True) -> None:
        command = [str(self._bin / program), *args]
        if self._as_postgres and program in {"initdb", "pg_ctl"}:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if check and done.returncode != 0:
            raise ServerError(f"{program} failed: {done.stderr.strip() or done.stdout.strip()}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


MOSQUITTO_CONF = """\
# Written by citytel for a local broker; see deploy/mosquitto/ for production.
listener {port} 127.0.0.1
{access}
persistence true
persistence_location {dir}/
autosave_interval 10
user {user}
log_dest file {dir}/mosquitto.log
log_type error
log_type warning
log_type notice
# The ingester's session is persistent: while it is away the broker queues for it.
# The default (1000 messages) would drop readings; cap by bytes instead.
max_queued_messages 0
max_queued_bytes {max_queued_bytes}
# Outgoing window for MQTT 3 clients; MQTT 5 clients set theirs (receive maximum).
max_inflight_messages 1000
max_packet_size {max_packet_size}
"""


class LocalMosquitto:
    """A Mosquitto broker with persistence in ``data_dir`` on 127.0.0.1:``port``."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        max_queued_bytes: int = 2 << 30,
        max_packet_size: int = 16 << 20,
        password_file: Path | None = None,
        acl_file: Path | None = None,
        tls: tuple[Path, Path, Path] | None = None,
    ) -> None:
        """``password_file`` turns anonymous access off; ``tls`` is (CA, certificate, key)."""
        self.data_dir = data_dir.resolve()
        self._access = _access_lines(password_file, acl_file, tls)
        self.port = port or free_port()
        self._max_queued_bytes = max_queued_bytes
        self._max_packet_size = max_packet_size
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            raise ServerError("no Mosquitto found: install the Debian package 'mosquitto'")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        conf = self.data_dir / "mosquitto.conf"
        self._stop_leftover(conf)
        _ensure_free(self.port, "Mosquitto")
        conf.write_text(
            MOSQUITTO_CONF.format(
                port=self.port,
                dir=self.data_dir,
                user=getpass.getuser(),
                access=self._access,
                max_queued_bytes=self._max_queued_bytes,
                max_packet_size=self._max_packet_size,
            )
        )
        # A session of its own: Ctrl-C reaches citytel, which stops the broker last.
        self._process = subprocess.Popen(
            [binary, "-c", str(conf)], stdin=subprocess.DEVNULL, start_new_session=True
        )
        # Remembered so that a later run can stop a broker this one leaves behind if killed.
        (self.data_dir / "mosquitto.pid").write_text(f"{self._process.pid}\n")
        wait_for_port(self.port, timeout=10, process=self._process, what="mosquitto")
        log.info("Mosquitto listening on 127.0.0.1:%d (%s)", self.port, self.data_dir)

    def _stop_leftover(self, conf: Path) -> None:
        """Stop a broker on our configuration that an earlier run left behind (killed)."""
        try:
            pid = int((self.data_dir / "mosquitto.pid").read_text().split()[0])
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            return
        if str(conf).encode() not in command:
            return
        log.warning("stopping the Mosquitto left running on %s (pid %d)", conf, pid)
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)

    def pid(self) -> int | None:
        """The broker's process id, while it runs."""
        if self._process is None or self._process.poll() is not None:
            return None
        return self._process.pid

    async def watch(self, every_s: float = 1.0) -> None:
        """Return when the broker has stopped (it should not, before ``stop``)."""
        # polled: a Popen has no awaitable exit, and a thread blocked in wait() would
        # outlive a cancelled watch
        while self._process is not None and self._process.poll() is None:  # noqa: ASYNC110
            await asyncio.sleep(every_s)
        code = self._process.returncode if self._process else None
        raise ServerError(f"Mosquitto exited (code {code}); see {self.data_dir / 'mosquitto.log'}")

    def stop(self, *, kill: bool = False) -> None:
        if self._process is None:
            return
        if kill:
            self._process.kill()
        else:
            self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None


def _access_lines(
    password_file: Path | None, acl_file: Path | None, tls: tuple[Path, Path, Path] | None
) -> str:
    lines = [
        f"password_file {password_file.resolve()}" if password_file else "",
        "allow_anonymous false" if password_file else "allow_anonymous true",
        f"acl_file {acl_file.resolve()}" if acl_file else "",
    ]
    if tls:
        ca, cert, key = (p.resolve() for p in tls)
        lines += [f"cafile {ca}", f"certfile {cert}", f"keyfile {key}", "tls_version tlsv1.2"]
    return "\n".join(line for line in lines if line)
