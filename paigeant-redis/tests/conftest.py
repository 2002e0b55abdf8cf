"""Fixtures for paigeant-redis tests: a real Redis on loopback, keys under a per-run prefix.

Tests that restart Redis start a redis-server of their own on a free loopback port; the shared
server is never restarted.

When Redis is unreachable the tests are skipped with the reason, except under ``CI=true``,
where they fail: CI must not go green without having run them.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

#: The server the tests use; loopback only.
REDIS_URL = os.environ.get("PAIGEANT_REDIS_TEST_URL", "redis://127.0.0.1:6379/0")
START_HINT = (
    "start one with: redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 "
    '--save "" --appendonly no'
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "no_redis: the test does not need a Redis server")


def _redis_problem() -> str | None:
    """Why Redis at REDIS_URL cannot be used, or None when it answers."""
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=2)
        try:
            client.ping()
        finally:
            client.close()
    except (redis.RedisError, OSError) as exc:
        return f"Redis at {REDIS_URL} is unreachable ({exc}); {START_HINT}"
    return None


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of the test Redis server."""
    return REDIS_URL


@pytest.fixture(scope="session")
def key_prefix() -> Iterator[str]:
    """A key prefix unique to this test run; its keys are deleted at the end."""
    prefix = f"paigeant-test-{uuid.uuid4().hex[:10]}"
    yield prefix
    if _redis_problem() is None:
        client = redis.Redis.from_url(REDIS_URL)
        try:
            keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


@pytest.fixture(scope="session")
def _redis_status() -> str | None:
    return _redis_problem()


@pytest.fixture(autouse=True)
def _require_redis(request: pytest.FixtureRequest, _redis_status: str | None) -> None:
    """Skip (or under CI=true, fail) a test that needs Redis when Redis is unreachable."""
    if _redis_status is None or request.node.get_closest_marker("no_redis"):
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{_redis_status} (CI=true: Redis tests must run)", pytrace=False)
    pytest.skip(_redis_status)


class RedisServer:
    """A redis-server of the tests' own on a free loopback port, stopped and restarted by pid.

    ``persistent``: AOF on with ``appendfsync always`` (a restart loses nothing acknowledged),
    else no persistence at all (a restart comes back empty).
    """

    def __init__(self, binary: str, directory: Path, *, persistent: bool) -> None:
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.directory = directory
        self._command = [binary, "--bind", "127.0.0.1", "--port", str(self.port)]
        self._command += ["--dir", str(directory), "--save", ""]
        self._command += ["--logfile", str(directory / "redis.log")]
        if persistent:
            self._command += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            self._command += ["--appendonly", "no"]
        self.pid: int | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server; return once it answers PING (its AOF loaded)."""
        self._process = subprocess.Popen(self._command, stdout=subprocess.DEVNULL)
        self.pid = self._process.pid
        deadline = time.monotonic() + 10
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2, socket_timeout=1)
        try:
            while time.monotonic() < deadline:
                try:
                    if client.ping():
                        return
                except (redis.RedisError, OSError):
                    time.sleep(0.02)
        finally:
            client.close()
        self.stop()
        raise RuntimeError(f"redis-server on port {self.port} did not start: {self.directory}")

    def stop(self) -> None:
        """SIGKILL the server by its pid (a crash: only what AOF holds survives)."""
        if self._process is not None and self.pid is not None:
            os.kill(self.pid, signal.SIGKILL)
            self._process.wait()
        self._process = None
        self.pid = None

    def restart(self, *, down_for: float = 0.5) -> None:
        """Kill the server, leave it down ``down_for`` seconds, start it again."""
        self.stop()
        time.sleep(down_for)
        self.start()

    def pause(self) -> None:
        """SIGSTOP the server: connections stay open, nothing answers."""
        assert self.pid is not None
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT a paused server."""
        assert self.pid is not None
        os.kill(self.pid, signal.SIGCONT)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _redis_server_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        reason = "redis-server is not on PATH (apt-get install redis-server)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}; CI=true needs it", pytrace=False)
        pytest.skip(reason)
    return binary


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own without persistence, to restart (empty) at will."""
    server = RedisServer(_redis_server_binary(), tmp_path, persistent=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def aof_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server of the tests' own with AOF (``appendfsync always``), shared by a session."""
    server = RedisServer(
        _redis_server_binary(), tmp_path_factory.mktemp("aof-redis"), persistent=True
    )
    server.start()
    yield server
    server.stop()
