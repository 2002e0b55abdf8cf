"""ActivityExecutor: finding an agent by name or attribute, listing what exists, serving it."""

from __future__ import annotations

import asyncio
import textwrap
import uuid
from pathlib import Path

import pytest

from paigeant import ActivitySpec, WorkflowDispatcher
from paigeant.agents import ActivityExecutor, AgentNotFoundError, PaigeantAgent, find_agent
from paigeant.runtime.activity import as_activity
from paigeant.transports.inmemory import InMemoryTransport

MODULE = """
from paigeant import activity
from paigeant.agents import PaigeantAgent, scripted_model

joke_generator = PaigeantAgent(scripted_model(lambda p, i: "a joke"), name="joke-generator")
critic = PaigeantAgent(scripted_model(lambda p, i: "meh"), name="joke-critic")

@activity("shout")
async def shout(ctx):
    return "HEY"

not_an_agent = 42
"""


@pytest.fixture
def agents_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"agents_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("PAIGEANT_MODEL", raising=False)
    return name


def test_finds_the_agent_by_its_name(agents_module: str) -> None:
    found = find_agent("joke-critic", agents_module)
    assert isinstance(found, PaigeantAgent)
    assert found.name == "joke-critic"


def test_finds_the_agent_by_attribute_name(agents_module: str) -> None:
    found = find_agent("critic", agents_module)
    assert isinstance(found, PaigeantAgent)
    assert found.name == "joke-critic"
    assert as_activity(find_agent("joke_generator", agents_module)).name == "joke-generator"


def test_an_unknown_name_lists_the_agents_found(agents_module: str) -> None:
    with pytest.raises(AgentNotFoundError) as caught:
        find_agent("joke-teller", agents_module)
    message = str(caught.value)
    assert f"no agent named 'joke-teller' in '{agents_module}'" in message
    assert "joke-critic (attribute critic)" in message
    assert "joke-generator (attribute joke_generator)" in message
    assert "shout (attribute shout)" in message
    assert "not_an_agent" not in message


def test_an_unimportable_module_says_how_to_fix_it() -> None:
    with pytest.raises(AgentNotFoundError, match="PYTHONPATH"):
        find_agent("x", "no_such_module_for_paigeant")


async def test_executor_serves_the_agent_until_stopped(
    agents_module: str, transport: InMemoryTransport
) -> None:
    executor = ActivityExecutor(transport, agent_name="joke-generator", agent_path=agents_module)
    task = asyncio.ensure_future(executor.start())
    await asyncio.wait_for(executor.ready.wait(), 5)
    dispatcher = WorkflowDispatcher(transport)
    correlation_id = await dispatcher.dispatch_workflow([ActivitySpec(name="joke-generator")])
    result = await dispatcher.wait_for(correlation_id, timeout=10)
    await dispatcher.close()
    executor.stop()
    await asyncio.wait_for(task, 5)

    assert result.status == "completed", result.error
    assert result.output == "a joke"
    assert executor.worker is not None
    assert list(executor.worker.activities) == ["joke-generator"]
    assert not executor.ready.is_set()


async def test_executor_start_fails_for_an_unknown_agent(
    agents_module: str, transport: InMemoryTransport
) -> None:
    executor = ActivityExecutor(transport, agent_name="nobody", agent_path=agents_module)
    with pytest.raises(AgentNotFoundError, match="found: "):
        await executor.start()


def test_seed_example_finds_the_joke_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PAIGEANT_MODEL", raising=False)
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2]))
    found = find_agent("joke-generator", "guides.dispatcher_example")
    assert isinstance(found, PaigeantAgent)
    assert found.name == "joke-generator"
