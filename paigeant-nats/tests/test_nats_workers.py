"""As a user would: two ``paigeant worker`` processes and ``paigeant dispatch --wait`` on NATS.

A worker is killed (SIGKILL) in the middle of a step, then the NATS server is killed and started
again; the workflow still completes, the step run again by the other worker.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

ACTIVITIES = """
import asyncio, os
from paigeant import ActivityContext, activity

@activity("slow-a")
async def slow_a(ctx: ActivityContext) -> str:
    with open(os.environ["LEDGER"], "a") as ledger:
        ledger.write(f"slow-a,{ctx.attempt},{os.getpid()}\\n")
    await asyncio.sleep(2)
    return "a"

@activity("slow-b")
async def slow_b(ctx: ActivityContext) -> str:
    return "b"
"""


def _paigeant(*args: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "paigeant", *args],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def test_a_workflow_survives_a_killed_worker_and_a_killed_server(
    make_server: Any, tmp_path: Path
) -> None:
    server = make_server()
    (tmp_path / "slow_activities.py").write_text(textwrap.dedent(ACTIVITIES))
    ledger, log = tmp_path / "ledger.csv", tmp_path / "processes.log"
    env = {
        **os.environ,
        "PAIGEANT_TRANSPORT": "nats",
        "PAIGEANT_NATS_URL": server.url,
        "PAIGEANT_SIGNING_KEY": secrets.token_hex(32),
        "PYTHONPATH": str(tmp_path),
        "LEDGER": str(ledger),
    }
    worker = ("worker", "slow_activities", "-o", "visibility_timeout=3")
    workers = [_paigeant(*worker, env=env, log=log) for _ in range(2)]
    dispatch = None
    try:
        time.sleep(1.5)  # both consuming
        dispatch = _paigeant(
            "dispatch", "slow-a", "slow-b", "--wait", "--timeout", "60", env=env, log=log
        )
        deadline = time.monotonic() + 20
        while not (ledger.exists() and ledger.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ledger.exists(), log.read_text()[-2000:]
        victim = int(ledger.read_text().split(",")[2])
        time.sleep(0.5)  # the server has written its consumer state (every 100 ms): attempt 2 next
        os.kill(victim, signal.SIGKILL)  # mid-step (the step takes 2 s)
        server.restart(down_for=0.5, kill=True)
        assert dispatch.wait(60) == 0, log.read_text()[-3000:]
    finally:
        for process in [*workers, dispatch]:
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
    output = log.read_text()
    assert '"status": "completed"' in output, output[-3000:]
    runs = [line.split(",") for line in ledger.read_text().splitlines()]
    assert [attempt for _, attempt, _ in runs] == ["1", "2"], runs
    assert runs[0][2] != runs[1][2], "the step was not taken over by the other worker"
