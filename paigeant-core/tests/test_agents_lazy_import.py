"""``import paigeant`` does not import pydantic-ai; the agent names load on first use."""

from __future__ import annotations

import subprocess
import sys

import paigeant


def run_python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    return done.stdout.strip()


def test_import_paigeant_does_not_import_pydantic_ai() -> None:
    out = run_python("import sys, paigeant; print('pydantic_ai' in sys.modules)")
    assert out == "False"


def test_agent_names_load_pydantic_ai_on_first_use() -> None:
    out = run_python(
        "import sys, paigeant; agent = paigeant.PaigeantAgent; "
        "print('pydantic_ai' in sys.modules, agent.__module__)"
    )
    assert out == "True paigeant.agents.agent"


def test_every_public_name_resolves() -> None:
    for name in paigeant.__all__:
        assert getattr(paigeant, name) is not None, name
    from paigeant import agents

    assert paigeant.PaigeantAgent is agents.PaigeantAgent
    assert paigeant.ActivityExecutor is agents.ActivityExecutor
    assert paigeant.create_planner_agent is agents.create_planner_agent
