"""``paigeant dashboard``: starts, prints its URL, serves the store, stops on Ctrl-C."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from paigeant import MemoryWorkflowStore, SqliteWorkflowStore
from paigeant.testing import WorkflowEvents
from paigeant_dashboard import DashboardSettings, server

from .conftest import DASHBOARD_TOKEN

PAIGEANT = str(Path(sys.executable).parent / "paigeant")


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAIGEANT_")}
    return {**env, "PAIGEANT_HOME": str(home), "COLUMNS": "200", **extra}


def _record_one(home: Path) -> str:
    w = WorkflowEvents()

    async def record() -> None:
        async with SqliteWorkflowStore(url=str(home / "paigeant.db")) as store:
            await store.record(w.dispatched(["fetch", "write"]))

    asyncio.run(record())
    return w.correlation_id


def test_it_prints_its_url_serves_the_store_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    cid = _record_one(tmp_path)
    process = subprocess.Popen(
        [PAIGEANT, "dashboard", "--port", "0", "--log-level", "warning"],
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        found = re.fullmatch(
            r"Dashboard running at (http://127\.0\.0\.1:\d+/) \(Ctrl-C to stop\)\n", line
        )
        assert found, line + (process.stderr.read() if process.poll() is not None else "")
        url = found.group(1)
        page = httpx.get(f"{url}workflows", headers={"accept": "text/html"}, timeout=10)
        assert page.status_code == 200 and cid in page.text
        queues = httpx.get(f"{url}queues", headers={"accept": "text/html"}, timeout=10)
        assert "in-memory transport, whose queues live inside one process" in queues.text
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.stderr is not None
    assert "Traceback" not in process.stderr.read()


def test_a_port_in_use_or_a_bad_setting_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [PAIGEANT, "dashboard", "--port", str(port)],
            env=_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert f"error: cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "--port" in done.stderr and "Traceback" not in done.stderr
    done = subprocess.run(
        [PAIGEANT, "dashboard", "--port", "0"],
        env=_env(tmp_path, PAIGEANT_DASHBOARD_TOKEN="short"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "PAIGEANT_DASHBOARD_TOKEN is too short" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.1.2.3", False),
        ("dash.example.com", False),
    ],
)
def test_which_hosts_are_loopback(host: str, loopback: bool) -> None:
    assert server.is_loopback(host) is loopback


@pytest.mark.parametrize("token", [None, DASHBOARD_TOKEN])
def test_listening_beyond_loopback_warns(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, token: str | None
) -> None:
    bound: list[Any] = []

    def bind_loopback_instead(host: str, port: int) -> socket.socket:
        bound.append(host)  # never really listen on every interface in a test
        return socket.create_server(("127.0.0.1", 0))

    async def serve_nothing(self: server.DashboardServer, sockets: Any = None) -> None:
        return None

    monkeypatch.setattr(server, "bind_socket", bind_loopback_instead)
    monkeypatch.setattr(server.DashboardServer, "serve", serve_nothing)
    with caplog.at_level(logging.WARNING, logger="paigeant_dashboard.server"):
        server.serve(MemoryWorkflowStore(), host="0.0.0.0", settings=DashboardSettings(token=token))
        server.serve(
            MemoryWorkflowStore(), host="127.0.0.1", settings=DashboardSettings(token=token)
        )
    assert bound == ["0.0.0.0", "127.0.0.1"]
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "listens on 0.0.0.0, not only on loopback" in warning
    assert ("set PAIGEANT_DASHBOARD_TOKEN" in warning) is (token is None)
    told: list[str] = []  # what `paigeant dashboard` prints on stderr, whatever the log level
    server.serve(MemoryWorkflowStore(), host="::", warn=told.append)
    assert told == [warning.replace("0.0.0.0", "::")] if token is None else len(told) == 1
