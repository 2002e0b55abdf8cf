"""Fixtures for paigeant-rabbitmq tests: the shared RabbitMQ on loopback, and private nodes.

Tests that restart or kill a broker start a RabbitMQ node of their own (its own node name,
port, distribution port, config, data and log directories under a temp dir owned by the
``rabbitmq`` user) and stop it with ``rabbitmqctl -n NODE stop`` or by pid; the shared node on
5672 is never restarted.

When RabbitMQ is unreachable the tests are skipped with the reason, except under ``CI=true``,
where they fail: CI must not go green without having run them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aio_pika
import pytest
import pytest_asyncio

from paigeant_rabbitmq import RabbitMQTransport

#: The shared broker the tests use; loopback only.
RABBITMQ_URL = os.environ.get("PAIGEANT_RABBITMQ_TEST_URL", "amqp://guest:guest@127.0.0.1:5672/")
START_HINT = "start it with: rabbitmq-server -detached"
_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
_CTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "no_rabbitmq: the test does not need a RabbitMQ broker")


def in_ci() -> bool:
    """Whether missing servers must fail the tests (``CI=true``)."""
    return os.environ.get("CI", "").lower() == "true"


def _rabbitmq_problem() -> str | None:
    """Why RabbitMQ at RABBITMQ_URL cannot be used, or None when it answers."""

    async def probe() -> None:
        connection = await aio_pika.connect(RABBITMQ_URL, timeout=3)
        await connection.close()

    try:
        asyncio.run(asyncio.wait_for(probe(), 5))
    except Exception as exc:
        return f"RabbitMQ at 127.0.0.1:5672 is unavailable ({exc!r}); {START_HINT}"
    return None


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    """URL of the shared test broker."""
    return RABBITMQ_URL


@pytest.fixture(scope="session")
def _rabbitmq_status() -> str | None:
    return _rabbitmq_problem()


@pytest.fixture(autouse=True)
def _require_rabbitmq(request: pytest.FixtureRequest, _rabbitmq_status: str | None) -> None:
    """Skip (or under CI=true, fail) a test that needs RabbitMQ when it is unavailable."""
    if _rabbitmq_status is None or request.node.get_closest_marker("no_rabbitmq"):
        return
    if in_ci():
        pytest.fail(f"{_rabbitmq_status} (CI=true: RabbitMQ tests must run)", pytrace=False)
    pytest.skip(_rabbitmq_status)


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RabbitNode:
    """A RabbitMQ node of the tests' own on free loopback ports; never the shared one."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/"
        self.name = f"paigeant-test-{self.port}-{uuid.uuid4().hex[:6]}@localhost"
        self.directory = directory
        self._user = pwd.getpwnam("rabbitmq")
        (directory / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = 127.0.0.1:{self.port}\nloopback_users = none\n"
        )
        (directory / "rabbitmq-env.conf").write_text("")
        (directory / "enabled_plugins").write_text("[].\n")
        cookie = directory / ".erlang.cookie"
        cookie.write_text(uuid.uuid4().hex)
        cookie.chmod(0o400)
        for path in [directory, *directory.iterdir()]:
            os.chown(path, self._user.pw_uid, self._user.pw_gid)
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin:/usr/sbin:/sbin"),
            "HOME": str(directory),
            "LANG": "C.UTF-8",
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_CONFIG_FILE": str(directory / "rabbitmq.conf"),
            "RABBITMQ_CONF_ENV_FILE": str(directory / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(directory / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(directory / "mnesia"),
            "RABBITMQ_LOG_BASE": str(directory / "log"),
            "RABBITMQ_FEATURE_FLAGS_FILE": str(directory / "feature_flags"),
            "RABBITMQ_PLUGINS_EXPAND_DIR": str(directory / "plugins-expand"),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }
        self._process: subprocess.Popen[bytes] | None = None

    def _run_as_rabbitmq(self, command: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
        return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
            command,
            env=self.env,
            cwd=self.directory,
            user=self._user.pw_uid,
            group=self._user.pw_gid,
            **kwargs,
        )

    def start(self) -> None:
        """Start the node; return once it accepts AMQP connections."""
        output = open(self.directory / "server.out", "ab")  # noqa: SIM115 - the node's lifetime
        self._process = self._run_as_rabbitmq(
            [_SERVER], stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            if _accepts(self.url):
                return
            time.sleep(0.2)
        self.stop(kill=True)
        raise RuntimeError(
            f"private RabbitMQ node on port {self.port} did not start; see {self.directory}"
        )

    def stop(self, *, kill: bool = False) -> None:
        """Stop the node: ``rabbitmqctl -n NODE stop``, or SIGKILL to its process group."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            if kill:  # the Erlang VM itself, as a crash would; the wrapper shell then exits
                for pid in _children(process.pid, "beam.smp") or [process.pid]:
                    os.kill(pid, signal.SIGKILL)
            else:
                ctl = self._run_as_rabbitmq(
                    [_CTL, "-n", self.name, "stop"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                ctl.wait(60)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        _wait_closed(self.port)

    def restart(self, *, down_for: float = 0.5, kill: bool = False) -> None:
        """Stop (``kill``: SIGKILL) the node, leave it down ``down_for`` seconds, start it."""
        self.stop(kill=kill)
        time.sleep(down_for)
        self.start()


def _children(pid: int, command: str) -> list[int]:
    """Pids of ``pid``'s child processes running ``command``."""
    listed = subprocess.run(
        ["ps", "-o", "pid=,comm=", "--ppid", str(pid)], capture_output=True, text=True, check=False
    )
    return [
        int(fields[0])
        for fields in (line.split() for line in listed.stdout.splitlines())
        if len(fields) == 2 and fields[1] == command
    ]


def _accepts(url: str) -> bool:
    async def probe() -> None:
        connection = await aio_pika.connect(url, timeout=1)
        await connection.close()

    try:
        asyncio.run(asyncio.wait_for(probe(), 3))
    except Exception:
        return False
    return True


def _wait_closed(port: int) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
        except OSError:
            return
        time.sleep(0.1)


def rabbitmq_installed() -> None:
    """Skip (fail under CI=true) when the RabbitMQ server is not installed here."""
    if (Path(_SERVER).exists() and shutil.which("erl") is not None) or Path(_SERVER).exists():
        try:
            pwd.getpwnam("rabbitmq")
            return
        except KeyError:
            pass
    reason = "rabbitmq-server is not installed (apt-get install rabbitmq-server)"
    if in_ci():
        pytest.fail(f"{reason}; CI=true needs it", pytrace=False)
    pytest.skip(reason)


@contextlib.contextmanager
def node_directory() -> Iterator[Path]:
    """A fresh directory the ``rabbitmq`` user can reach (pytest's tmp dirs are root-only)."""
    directory = Path(tempfile.mkdtemp(prefix="paigeant-rabbitmq-"))
    directory.chmod(0o755)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def private_rabbitmq() -> Iterator[RabbitNode]:
    """A RabbitMQ node of the tests' own, shared by the session, to restart and kill."""
    rabbitmq_installed()
    with node_directory() as directory:
        node = RabbitNode(directory)
        node.start()
        try:
            yield node
        finally:
            node.stop()


@pytest.fixture
def queue_name() -> str:
    """A queue name unique to the test."""
    return f"pgtest.{uuid.uuid4().hex[:12]}"


@pytest_asyncio.fixture
async def transport(rabbitmq_url: str) -> AsyncIterator[RabbitMQTransport]:
    """A connected transport on the shared broker (1 s leases)."""
    async with RabbitMQTransport(url=rabbitmq_url, visibility_timeout=1.0) as connected:
        yield connected  # type: ignore[misc]
