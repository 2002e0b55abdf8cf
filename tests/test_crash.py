"""Crash test: 200 four-step workflows per broker, a worker SIGKILLed mid-run, nothing lost.

Each broker transport adds its name to BROKERS and a ``<name>_env`` fixture in conftest.py
(transport name, URL, isolation prefix, signing key) that fails under ``CI=true`` when the
broker is unreachable.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from paigeant import ActivitySpec, WorkflowDispatcher, get_transport

WORKLOADS = Path(__file__).parent / "workloads"
WORKFLOWS = 200
STEPS = 4
BROKERS = ["redis", "nats", "rabbitmq"]


def _start_worker(env: dict[str, str], log: Path, transport: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "paigeant",
            "worker",
            "crash_activities",
            "--transport",
            transport,
            "-o",
            "visibility_timeout=2",
            "--concurrency",
            "8",
            "--log-level",
            "WARNING",
        ],
        cwd=WORKLOADS,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def _ledger_lines(ledger: Path) -> list[tuple[str, int, int]]:
    if not ledger.exists():
        return []
    rows = []
    text = ledger.read_text()
    complete = text[: text.rfind("\n") + 1]  # a line still being appended is read next time
    for line in complete.splitlines():
        cid, step, attempt = line.split(",")
        rows.append((cid, int(step), int(attempt)))
    return rows


@pytest.mark.parametrize("broker", BROKERS)
async def test_sigkill_mid_run_loses_nothing(
    broker: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    broker_env: dict[str, str] = request.getfixturevalue(f"{broker}_env")
    ledger, log = tmp_path / "ledger.csv", tmp_path / "workers.log"
    env = {**os.environ, **broker_env, "PAIGEANT_TEST_LEDGER": str(ledger)}
    workers = [_start_worker(env, log, broker), _start_worker(env, log, broker)]
    replacement = None
    transport = get_transport(broker)
    try:
        async with transport:
            dispatcher = WorkflowDispatcher(transport)
            itinerary = [ActivitySpec(name=f"crash-step-{i}") for i in range(STEPS)]
            cids = [await dispatcher.dispatch_workflow(itinerary) for _ in range(WORKFLOWS)]
            deadline = time.monotonic() + 60
            while len(_ledger_lines(ledger)) < WORKFLOWS and time.monotonic() < deadline:  # noqa: ASYNC110 - other processes write the ledger file
                await asyncio.sleep(0.05)
            killed_at = len(_ledger_lines(ledger))
            assert killed_at < WORKFLOWS * STEPS, "the run finished before the kill"
            workers[0].send_signal(signal.SIGKILL)
            workers[0].wait(10)
            replacement = _start_worker(env, log, broker)
            results = await asyncio.gather(*(dispatcher.wait_for(cid, timeout=120) for cid in cids))
            await dispatcher.close()
    finally:
        for process in [*workers, replacement]:
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()

    assert [r.status for r in results] == ["completed"] * WORKFLOWS, log.read_text()[-3000:]
    rows = _ledger_lines(ledger)
    runs = Counter((cid, step) for cid, step, _ in rows)
    missing = [(cid, step) for cid in cids for step in range(STEPS) if (cid, step) not in runs]
    assert not missing, f"steps never ran: {missing[:5]}"
    for result in results:
        assert [e.name for e in result.activity_log] == [f"crash-step-{i}" for i in range(STEPS)]
    twice = sum(count - 1 for count in runs.values() if count > 1)
    redelivered = sum(1 for _, _, attempt in rows if attempt > 1)
    with capsys.disabled():
        print(
            f"\ncrash test on {broker}: {WORKFLOWS} workflows x {STEPS} steps, worker SIGKILLed after "
            f"{killed_at} ledger entries; all completed; {twice} step(s) ran twice, "
            f"{redelivered} ledger entries from redeliveries (attempt > 1)"
        )
