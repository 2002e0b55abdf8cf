"""Fixtures for paigeant-nats tests: the shared NATS server on loopback, and private ones.

Tests that restart or kill a server start a ``nats-server -js`` of their own on a free loopback
port with its own store directory, and stop it by pid; the shared server is never restarted.

When NATS is unreachable the tests are skipped with the reason, except under ``CI=true``,
where they fail: CI must not go green without having run them.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
import pytest_asyncio

from paigeant_nats import NatsTransport

#: The shared server the tests use; loopback only.
NATS_URL = os.environ.get("PAIGEANT_NATS_TEST_URL", "nats://127.0.0.1:4222")
START_HINT = (
    "start one with: start-stop-daemon --start --oknodo --background --exec "
    "/usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server"
)


#: A private server's config: messages up to 8 MB, so 1 MiB paigeant messages fit.
BIG_PAYLOAD = "max_payload: 8MB\n"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "no_nats: the test does not need a NATS server")


def in_ci() -> bool:
    """Whether missing servers must fail the tests (``CI=true``)."""
    return os.environ.get("CI", "").lower() == "true"


def _nats_problem() -> str | None:
    """Why NATS with JetStream at NATS_URL cannot be used, or None when it answers."""

    async def probe() -> None:
        async def quiet(exc: Exception) -> None:
            pass

        client = await nats.connect(
            NATS_URL, connect_timeout=1, max_reconnect_attempts=1, error_cb=quiet
        )
        try:
            await client.request("$JS.API.INFO", b"", timeout=2)
        finally:
            await client.close()

    try:
        asyncio.run(asyncio.wait_for(probe(), 5))
    except Exception as exc:
        return f"NATS with JetStream at {NATS_URL} is unavailable ({exc!r}); {START_HINT}"
    return None


@pytest.fixture(scope="session")
def nats_url() -> str:
    """URL of the shared test server."""
    return NATS_URL


@pytest.fixture(scope="session")
def prefix() -> str:
    """A subject/stream prefix unique to this test run (its streams are deleted by the tests)."""
    return f"pgtest-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def _nats_status(prefix: str) -> Iterator[str | None]:
    problem = _nats_problem()
    yield problem
    if problem is None:  # the run's streams on the shared server, the delay stream included
        asyncio.run(delete_streams(NATS_URL, prefix))


@pytest.fixture(autouse=True)
def _require_nats(request: pytest.FixtureRequest, _nats_status: str | None) -> None:
    """Skip (or under CI=true, fail) a test that needs NATS when NATS is unavailable."""
    if _nats_status is None or request.node.get_closest_marker("no_nats"):
        return
    if in_ci():
        pytest.fail(f"{_nats_status} (CI=true: NATS tests must run)", pytrace=False)
    pytest.skip(_nats_status)


@pytest_asyncio.fixture
async def cleanup_streams(nats_url: str, prefix: str) -> AsyncIterator[None]:
    """Delete every stream of the run's prefix after the test."""
    yield
    await delete_streams(nats_url, prefix)


async def delete_streams(url: str, prefix: str) -> None:
    """Delete the streams whose names start with ``prefix`` (upper-cased, as the transport names them)."""

    async def quiet(exc: Exception) -> None:
        pass

    client = await nats.connect(url, max_reconnect_attempts=1, error_cb=quiet)
    try:
        manager = client.jsm()
        for info in await manager.streams_info():
            if info.config.name and info.config.name.startswith(prefix.upper()):
                await manager.delete_stream(info.config.name)
    finally:
        await client.close()


class NatsServer:
    """A ``nats-server -js`` of the tests' own on a free loopback port, stopped by pid."""

    def __init__(self, binary: str, directory: Path, *, jetstream: bool = True, config: str = ""):
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.directory = directory
        self.log = directory / "nats-server.log"
        self._command = [binary, "-a", "127.0.0.1", "-p", str(self.port), "-l", str(self.log)]
        if jetstream:
            self._command += ["-js", "-sd", str(directory / "store")]
        if config:
            conf = directory / "nats-server.conf"
            conf.write_text(config)
            self._command += ["-c", str(conf)]
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The server's pid while it runs."""
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Start the server; return once it accepts TCP connections."""
        self._process = subprocess.Popen(self._command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"nats-server on port {self.port} did not start; see {self.log}")

    def stop(self, *, kill: bool = False) -> None:
        """SIGTERM (or SIGKILL) the server by its pid and wait for it."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL if kill else signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()

    def restart(self, *, down_for: float = 0.5, kill: bool = False) -> None:
        """Stop (``kill``: SIGKILL) the server, leave it down ``down_for`` seconds, start it."""
        self.stop(kill=kill)
        time.sleep(down_for)
        self.start()


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def nats_server_binary() -> str:
    """Path of nats-server; skip (fail under CI=true) when it is not installed."""
    binary = shutil.which("nats-server") or (
        "/usr/sbin/nats-server" if Path("/usr/sbin/nats-server").exists() else None
    )
    if binary is None:
        reason = "nats-server is not installed (apt-get install nats-server)"
        if in_ci():
            pytest.fail(f"{reason}; CI=true needs it", pytrace=False)
        pytest.skip(reason)
    return binary


@pytest.fixture(scope="session")
def private_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """A nats-server -js of the tests' own (file store), shared by the session, to restart."""
    server = NatsServer(
        nats_server_binary(), tmp_path_factory.mktemp("private-nats"), config=BIG_PAYLOAD
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[type[NatsServer]]:
    """Start servers of this test's own: ``make_server(jetstream=..., config=...)``."""
    started: list[NatsServer] = []

    def make(*, jetstream: bool = True, config: str = "") -> NatsServer:
        directory = tmp_path / f"server-{len(started)}"
        directory.mkdir()
        server = NatsServer(nats_server_binary(), directory, jetstream=jetstream, config=config)
        server.start()
        started.append(server)
        return server

    yield make  # type: ignore[misc]
    for server in started:
        server.stop()


@pytest_asyncio.fixture
async def transport(
    nats_url: str, prefix: str, cleanup_streams: None
) -> AsyncIterator[NatsTransport]:
    """A connected transport on the shared server (1 s leases), under the run's prefix."""
    async with NatsTransport(url=nats_url, prefix=prefix, visibility_timeout=1.0) as connected:
        yield connected  # type: ignore[misc]
