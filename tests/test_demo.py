"""``paigeant demo`` from the command line: offline by default, one process per agent on Redis."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
AGENTS = ("input-agent", "enrichment-agent", "output-agent")


def fresh_env(**extra: str) -> dict[str, str]:
    """A fresh shell's environment: nothing PAIGEANT_* set but the test's own home, a wide terminal."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAIGEANT_")}
    env.update(
        COLUMNS="120",
        PAIGEANT_DEMO_LATENCY="0.05",
        PAIGEANT_HOME=os.environ["PAIGEANT_HOME"],  # a tmp dir (conftest), never the real home
        **extra,
    )
    return env


def paigeant(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "paigeant", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def demo(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "paigeant", "demo", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def check_output(out: str) -> None:
    for agent in AGENTS:
        assert re.search(rf"{agent}\s+│ completed\s+│\s+\d+\.\d+s", out), out
    assert "final output" in out
    assert re.search(r"total time: \d+\.\d+s", out)
    assert re.search(rf"correlation id: {UUID}", out)


def test_demo_runs_offline_in_one_process() -> None:
    done = demo(env=fresh_env())
    assert done.returncode == 0, done.stdout + done.stderr
    check_output(done.stdout)
    assert "InMemoryTransport (in-process workers); model: offline" in done.stdout


def test_after_the_demo_another_command_lists_and_shows_its_workflow(tmp_path: Path) -> None:
    env = fresh_env()
    done = demo(env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    match = re.search(rf"correlation id: ({UUID})", done.stdout)
    assert match, done.stdout
    cid = match.group(1)
    assert "recorded in the sqlite workflow store at" in " ".join(done.stdout.split())
    wide = {**env, "COLUMNS": "220"}
    listed = paigeant("workflows", "list", env=wide)
    assert listed.returncode == 0, listed.stderr
    assert re.search(
        rf"{cid}\s+│ completed\s+│ input-agent → enrichment-agent → output-agent", listed.stdout
    )
    shown = paigeant("workflows", "show", cid, env=wide)
    assert shown.returncode == 0, shown.stderr
    for agent in AGENTS:
        assert re.search(rf"│ {agent}\s+│ completed │\s+1 │\s+\d+\.\d+s │", shown.stdout), (
            shown.stdout
        )
    assert (Path(env["PAIGEANT_HOME"]) / "paigeant.db").is_file()


def test_demo_with_a_model_whose_provider_is_missing_says_what_to_do() -> None:
    if importlib.util.find_spec("anthropic") is not None:
        pytest.skip("the anthropic package is installed here, so its absence cannot be shown")
    done = demo(env=fresh_env(PAIGEANT_MODEL="anthropic:claude-3-5-sonnet-latest"))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    message = " ".join(done.stderr.split())
    assert "PAIGEANT_MODEL='anthropic:claude-3-5-sonnet-latest'" in message
    assert "ANTHROPIC_API_KEY" in message
    assert 'pip install "pydantic-ai-slim[anthropic]"' in message


def test_demo_runs_a_worker_process_per_agent_on_redis(redis_env: dict[str, str]) -> None:
    env = fresh_env(**redis_env)
    done = demo("--transport", "redis", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    check_output(done.stdout)
    assert "RedisTransport (a worker process per agent)" in done.stdout
    pids = {
        agent: re.search(rf"{agent}\s+│ completed\s+│[^│]+│ \S+:(\d+):", done.stdout)
        for agent in AGENTS
    }
    assert all(pids.values()), done.stdout
    assert len({match.group(1) for match in pids.values() if match}) == 3


def test_demo_on_redis_from_the_environment_needs_no_key_setup(redis_env: dict[str, str]) -> None:
    settings = {k: v for k, v in redis_env.items() if k != "PAIGEANT_SIGNING_KEY"}
    done = demo(env=fresh_env(**settings))  # PAIGEANT_TRANSPORT=redis, no signing key anywhere
    assert done.returncode == 0, done.stdout + done.stderr
    check_output(done.stdout)
    assert "one-off key shared with the demo's own worker processes" in " ".join(
        done.stdout.split()
    )


def test_demo_runs_a_worker_process_per_agent_on_nats(nats_env: dict[str, str]) -> None:
    done = demo("--transport", "nats", env=fresh_env(**nats_env))
    assert done.returncode == 0, done.stdout + done.stderr
    check_output(done.stdout)
    assert "NatsTransport (a worker process per agent)" in done.stdout


def test_demo_runs_a_worker_process_per_agent_on_rabbitmq(rabbitmq_env: dict[str, str]) -> None:
    done = demo("--transport", "rabbitmq", env=fresh_env(**rabbitmq_env))
    assert done.returncode == 0, done.stdout + done.stderr
    check_output(done.stdout)
    assert "RabbitMQTransport (a worker process per agent)" in done.stdout
