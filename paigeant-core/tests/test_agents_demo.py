"""``paigeant demo`` in one process: the live view, the final output, the correlation id."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from paigeant.cli.demo import WorkflowView, demo_workflow, run_demo
from paigeant.transports.inmemory import InMemoryTransport
from paigeant.workflow.events import EventType, WorkflowEvent


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PAIGEANT_MODEL", raising=False)


def test_run_demo_shows_each_agent_the_final_output_and_the_correlation_id() -> None:
    buffer = io.StringIO()
    run_demo("inmemory", console=Console(file=buffer, width=120, force_terminal=False))
    out = buffer.getvalue()

    for agent in ("input-agent", "enrichment-agent", "output-agent"):
        assert re.search(rf"{agent}\s+│ completed\s+│\s+\d+\.\d+s", out), out
    assert "final output" in out
    assert "Durable workflows for AI agents, for a new engineer:" in out
    assert re.search(r"total time: \d+\.\d+s", out)
    match = re.search(r"correlation id: ([0-9a-f-]{36})", out)
    assert match is not None, out
    assert f"workflow {match.group(1)}" in out


async def test_demo_workflow_runs_the_three_agents_in_turn() -> None:
    transport = InMemoryTransport()
    run = await demo_workflow(transport, prompt="Tell me about agents to a tester")

    assert run.result.status == "completed", run.result.error
    assert [e.name for e in run.result.activity_log] == [
        "input-agent",
        "enrichment-agent",
        "output-agent",
    ]
    assert run.result.outputs["input-agent"] == {"topic": "agents", "audience": "a tester"}
    assert run.result.outputs["enrichment-agent"]["facts"][0].startswith("Each agent is")
    assert str(run.result.output).startswith("Agents, for a tester:")
    assert [step.status for step in run.view.steps] == ["completed"] * 3
    assert all(step.duration is not None for step in run.view.steps)


def test_the_view_follows_events() -> None:
    view = WorkflowView.for_agents(["a", "b"])
    view.start("cid")
    assert [s.status for s in view.steps] == ["running", "pending"]
    view.apply(
        WorkflowEvent(
            type=EventType.ACTIVITY_COMPLETED, correlation_id="cid", activity="a", duration=0.5
        )
    )
    assert [s.status for s in view.steps] == ["completed", "running"]
    view.apply(WorkflowEvent(type=EventType.ACTIVITY_FAULTED, correlation_id="cid", activity="b"))
    assert [s.status for s in view.steps] == ["completed", "faulted"]
