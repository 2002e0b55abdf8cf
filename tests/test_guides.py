"""The guides run as a new user runs them: as scripts from the repository root, offline."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def offline_env(**extra: str) -> dict[str, str]:
    """The environment of a fresh shell: no model, transport or signing configured."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAIGEANT_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run_guide(name: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, f"guides/{name}"],
        cwd=ROOT,
        env=env or offline_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_dispatcher_example() -> None:
    out = run_guide("dispatcher_example.py")
    assert re.search(rf"^Workflow dispatched: ({UUID})$", out, re.MULTILINE), out
    assert "Status: completed" in out
    assert "Joke: Why did the routing slip refuse to work alone?" in out
    assert "Rating: 7/10" in out
    correlation_id = re.search(rf"^Correlation id: ({UUID})$", out, re.MULTILINE)
    assert correlation_id is not None and correlation_id.group(1) in out.splitlines()[0]


def test_planner_example_dispatches_the_onboarding_workflow_offline() -> None:
    out = run_guide("planner_example.py")
    dispatched = re.search(rf"^Workflow dispatched: ({UUID})$", out, re.MULTILINE)
    assert dispatched, out
    assert f"Planner: Dispatched workflow {dispatched.group(1)}." in out
    assert "Steps: validate-input -> create-account -> send-notification" in out
    assert "Status: completed" in out
    assert "Result: {'sent_to': 'ada@example.com'}" in out
    assert f"Correlation id: {dispatched.group(1)}" in out


def test_three_agent_workflow_example_in_one_process() -> None:
    out = run_guide("three_agent_workflow_example.py")
    assert "Status: completed" in out
    assert re.search(r"ticket-intake ran on .*\n.*ticket-enrichment ran on .*\n.*reply-writer", out)
    assert "Reply: Hi Ada, sorry about your router. Restart the router and wait two minutes." in out
    assert re.search(rf"^Correlation id: {UUID}$", out, re.MULTILINE), out


def test_execution_example_serves_an_agent_until_sigterm() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "guides/execution_example.py",
            "joke-generator",
            "guides.dispatcher_example",
        ],
        cwd=ROOT,
        env=offline_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.strip() == "Worker for joke-generator ready on InMemoryTransport"
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert "does not cross processes" in err


def test_execution_example_lists_the_agents_for_an_unknown_name() -> None:
    done = subprocess.run(
        [sys.executable, "guides/execution_example.py", "joke-teller", "guides.dispatcher_example"],
        cwd=ROOT,
        env=offline_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "no agent named 'joke-teller'" in done.stderr
    assert "joke-generator (attribute joke_generator)" in done.stderr
    assert "Traceback" not in done.stderr


def test_three_agent_workflow_example_with_a_worker_process_per_agent(
    redis_env: dict[str, str],
) -> None:
    out = run_guide("three_agent_workflow_example.py", offline_env(**redis_env))
    pids = re.findall(r"worker process (\d+): Worker for ([\w-]+) ready", out)
    assert [agent for _, agent in pids] == ["ticket-intake", "ticket-enrichment", "reply-writer"]
    assert "Status: completed" in out
    workers = re.findall(r"(ticket-intake|ticket-enrichment|reply-writer) ran on \S+:(\d+):", out)
    assert [(agent, pid) for pid, agent in pids] == workers
    assert re.search(rf"^Correlation id: {UUID}$", out, re.MULTILINE), out
