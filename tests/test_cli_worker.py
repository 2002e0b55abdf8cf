"""``paigeant worker`` as a process: one ready line (worker, transport, queues), SIGTERM drains."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_worker_prints_one_ready_line_then_stops_on_sigterm(redis_env: dict[str, str]) -> None:
    env = {**os.environ, **redis_env, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "paigeant", "worker", "guides.onboarding_example"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        process.send_signal(signal.SIGTERM)
        rest, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    match = re.fullmatch(r"paigeant-worker-ready worker=(\S+) transport=(\S+) queues=(\S+)", line)
    assert match, f"unexpected ready line {line!r}; stderr:\n{err}"
    worker, transport, queues = match.groups()
    assert re.fullmatch(rf"[^:]+:{process.pid}:[0-9a-f]{{6}}", worker), worker
    assert transport == "redis"
    assert set(queues.split(",")) == {
        "paigeant.validate-input",
        "paigeant.create-account",
        "paigeant.create-account.compensate",
        "paigeant.send-notification",
    }
    assert process.returncode == 0, err
    assert rest == "", "the worker printed more than its ready line on stdout"


def test_worker_for_a_missing_module_exits_with_one_clear_line(redis_env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "paigeant", "worker", "no_such_module_here"],
        cwd=ROOT,
        env={**os.environ, **redis_env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "cannot import 'no_such_module_here'" in done.stderr
    assert "Traceback" not in done.stderr
    assert "paigeant-worker-ready" not in done.stdout
