"""Operations as a new user meets them, with real processes on Redis and each workflow store.

A worker, ``paigeant monitor`` and CLI commands, each its own process: a workflow whose second
step always fails is listed as faulted and shows its compensation; a step that kills its worker
on every attempt ends in the dead letters after max_deliveries, and once a fixed worker runs,
``dead-letters redrive QUEUE --all`` makes that workflow complete.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

WORKLOADS = Path(__file__).parent / "workloads"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
LEASE = ["-o", "visibility_timeout=1", "-o", "max_deliveries=2"]


class Processes:
    """Starts ``paigeant`` processes in the workloads directory; stops them all at the end."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.running: list[subprocess.Popen[str]] = []

    def start(
        self, *args: str, ready: str, extra: dict[str, str] | None = None
    ) -> subprocess.Popen[str]:
        """Start ``paigeant ARGS`` and wait for its ready line."""
        log = (self.logs / f"{args[0]}-{len(self.running)}.log").open("w")
        process = subprocess.Popen(
            [sys.executable, "-m", "paigeant", *args],
            cwd=WORKLOADS,
            env={**self.env, **(extra or {})},
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        self.running.append(process)
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith(ready), f"{args} printed {line!r}; log:\n{self.log_text()}"
        return process

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``paigeant ARGS`` to completion."""
        done = subprocess.run(
            [sys.executable, "-m", "paigeant", *args],
            cwd=WORKLOADS,
            env={**self.env, "COLUMNS": "200"},
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check:
            assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
        return done

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--json").stdout)

    def log_text(self) -> str:
        return "\n".join(
            f"== {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.logs.glob("*.log"))
        )

    def stop(self) -> None:
        for process in self.running:
            if process.poll() is None:
                process.terminate()
        for process in self.running:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def eventually(check: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """Call ``check`` until it returns something truthy; fail naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)


@pytest.fixture(params=["sqlite", "postgres"])
def store_env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    if request.param == "postgres":
        env: dict[str, str] = request.getfixturevalue("postgres_env")
        return env
    return {"PAIGEANT_STORE": "sqlite", "PAIGEANT_STORE_URL": str(tmp_path / "ops.db")}


@pytest.fixture
def processes(
    redis_env: dict[str, str], store_env: dict[str, str], tmp_path: Path
) -> Iterator[Processes]:
    env = {**os.environ, **redis_env, **store_env, "PYTHONUNBUFFERED": "1"}
    env.pop("PAIGEANT_TEST_FIXED", None)
    logs = tmp_path / "logs"
    logs.mkdir()
    started = Processes(env, logs)
    try:
        yield started
    finally:
        started.stop()


def dispatch(processes: Processes, *activities: str) -> str:
    out = processes.run("dispatch", *activities, "--monitor").stdout
    match = re.search(rf"Workflow dispatched: ({UUID})", out)
    assert match, out
    return match.group(1)


def status_of(processes: Processes, cid: str) -> str | None:
    done = processes.run("workflows", "show", cid, "--json", check=False)
    return json.loads(done.stdout)["status"] if done.returncode == 0 else None


def test_faulted_dead_lettered_and_redriven_workflows(
    processes: Processes, redis_env: dict[str, str]
) -> None:
    processes.start("monitor", ready="paigeant-monitor-ready")
    processes.start("worker", "ops_activities:MAIN", *LEASE, ready="paigeant-worker-ready")
    processes.start("worker", "ops_activities:CRASHY", *LEASE, ready="paigeant-worker-ready")

    faulted = dispatch(processes, "ops-reserve", "ops-charge")
    stuck = dispatch(processes, "ops-reserve", "ops-crash", "ops-finish")

    # the failing step: faulted, with its error, and the compensation of the step before it
    eventually(lambda: status_of(processes, faulted) == "faulted", "the faulted workflow")
    listed = processes.json("workflows", "list", "--status", "faulted")
    (row,) = [item for item in listed["items"] if item["correlation_id"] == faulted]
    assert row["error"] == "RuntimeError: card declined"
    table = processes.run("workflows", "list", "--status", "faulted").stdout
    assert faulted in table and "RuntimeError: card declined" in table
    shown = processes.run("workflows", "show", faulted).stdout
    assert "compensations" in shown and re.search(r"│ ops-reserve\s+│ compensated", shown), shown
    record = processes.json("workflows", "show", faulted)
    assert [(s["name"], s["status"], s["attempts"]) for s in record["steps"]] == [
        ("ops-reserve", "completed", 1),
        ("ops-charge", "faulted", 2),
    ]

    # the step that kills its worker: restarted workers die too, until the transport parks it
    letters = eventually(lambda: _restart_until(processes, stuck), "the dead letter", 90)
    assert "max_deliveries=2" in letters[0]["reason"], letters
    assert letters[0]["source_queue"] == "paigeant.ops-crash"
    listed_text = processes.run("dead-letters", "list", "ops-crash").stdout
    assert stuck in listed_text
    running = processes.json("workflows", "show", stuck)
    assert running["status"] == "running"
    assert running["steps"][1]["name"] == "ops-crash" and running["steps"][1]["attempts"] >= 2

    # a fixed worker, then redrive: the workflow completes
    for process in _crashy(processes):
        process.terminate()
    processes.start(
        "worker",
        "ops_activities:CRASHY",
        *LEASE,
        ready="paigeant-worker-ready",
        extra={"PAIGEANT_TEST_FIXED": "1"},
    )
    redriven = processes.run("dead-letters", "redrive", "paigeant.ops-crash", "--all").stdout
    assert "1 dead letter(s) redriven" in redriven, redriven
    eventually(lambda: status_of(processes, stuck) == "completed", "the redriven workflow")
    record = processes.json("workflows", "show", stuck)
    assert [(s["name"], s["status"]) for s in record["steps"]] == [
        ("ops-reserve", "completed"),
        ("ops-crash", "completed"),
        ("ops-finish", "completed"),
    ]
    assert record["steps"][1]["output"] == "fixed on attempt 1"
    assert record["steps"][1]["attempts"] >= 3
    assert processes.json("dead-letters", "list", "ops-crash") == []
    queues = {row["queue"]: row for row in processes.json("queues", *LEASE)}
    assert "paigeant.ops-crash" in queues and "paigeant.monitor.events" in queues
    assert _reply_queues(redis_env) == [], "a workflow's end made a reply queue nobody reads"


def _reply_queues(redis_env: dict[str, str]) -> list[str]:
    """Reply queues in Redis: ``paigeant dispatch`` without ``--wait`` must leave none."""
    import redis

    client = redis.Redis.from_url(redis_env["PAIGEANT_REDIS_URL"])
    try:
        prefix = redis_env["PAIGEANT_REDIS_KEY_PREFIX"]
        return [key.decode() for key in client.scan_iter(match=f"{prefix}:*.replies.*")]
    finally:
        client.close()


def _crashy(processes: Processes) -> list[subprocess.Popen[str]]:
    return [p for p in processes.running if "ops_activities:CRASHY" in p.args]  # type: ignore[operator]


def _restart_until(processes: Processes, cid: str) -> list[Any]:
    """Restart the crashing worker whenever it died; return the dead letters of ``cid``."""
    if all(process.poll() is not None for process in _crashy(processes)):
        processes.start("worker", "ops_activities:CRASHY", *LEASE, ready="paigeant-worker-ready")
    letters = processes.json("dead-letters", "list", "ops-crash", *LEASE)
    return [letter for letter in letters if letter["correlation_id"] == cid]


def test_a_monitor_killed_mid_batch_loses_nothing(
    redis_env: dict[str, str], tmp_path: Path
) -> None:
    import asyncio
    import signal
    import sqlite3

    from paigeant import EventType, SqliteWorkflowStore, get_transport, monitor_queue
    from paigeant.security.hmac_signer import HmacSigner
    from paigeant.testing import WorkflowEvents
    from paigeant.workflow.codec import canonical_json
    from paigeant.workflow.wire import Wire

    workflows = [WorkflowEvents() for _ in range(3000)]
    events = []
    for w in workflows:
        events += [w.dispatched(["a"]), w.started(0, "a"), w.completed(0, "a", {"n": 1})]
        events.append(w.finished(EventType.WORKFLOW_COMPLETED, 0))
    store_url = str(tmp_path / "killed.db")

    async def publish() -> None:
        wire = Wire(HmacSigner(redis_env["PAIGEANT_SIGNING_KEY"]))
        async with get_transport("redis") as transport:
            for event in events:
                body = canonical_json(event.model_dump(mode="json", exclude_none=True))
                out = wire.seal(
                    monitor_queue(),
                    body,
                    message_id=event.id or "",
                    correlation_id=event.correlation_id,
                    traceparent=None,
                )
                await transport.publish(
                    out.queue, out.body, message_id=out.message_id, headers=out.headers
                )

    async def recorded() -> tuple[int, int]:
        async with SqliteWorkflowStore(url=store_url) as store:
            counts = await store.counts()
            total = 0
            for w in workflows[:: len(workflows) // 20]:
                record = await store.get(w.correlation_id)
                total += 0 if record is None else record.events
            return counts["completed"], total

    def committed_workflows() -> int:
        """Workflows in the store file right now (read directly: polled every few ms)."""
        try:
            with sqlite3.connect(f"file:{store_url}?mode=ro", uri=True) as db:
                return int(db.execute("SELECT count(*) FROM workflows").fetchone()[0])
        except sqlite3.Error:
            return 0

    asyncio.run(publish())
    env = {**os.environ, **redis_env, "PAIGEANT_STORE_URL": store_url, "PYTHONUNBUFFERED": "1"}
    processes = Processes(env, tmp_path)
    try:
        first = processes.start("monitor", "--batch-size", "50", ready="paigeant-monitor-ready")
        deadline = time.monotonic() + 60
        while committed_workflows() == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        partly = committed_workflows()
        print(f"\nmonitor SIGKILLed with {partly} of {len(workflows)} workflows recorded")
        assert partly < len(workflows), "the monitor finished before it was killed"
        processes.start("monitor", "-o", "visibility_timeout=1", ready="paigeant-monitor-ready")
        eventually(lambda: asyncio.run(recorded())[0] == len(workflows), "every workflow", 120)
    finally:
        processes.stop()
    completed, sampled_events = asyncio.run(recorded())
    assert completed == len(workflows)
    assert sampled_events == 20 * 4, "an event was lost or applied twice"
