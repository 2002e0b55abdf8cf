"""Agent-edited itineraries: the add-steps tool, its per-workflow limit, and its absence."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from pydantic_ai.messages import (
    ModelMessage,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel

from paigeant import (
    ActivityContext,
    ActivitySpec,
    EventType,
    Worker,
    WorkflowDispatcher,
    WorkflowEvent,
    WorkflowResult,
    activity,
)
from paigeant.agents import PaigeantAgent
from paigeant.agents.itinerary import ADD_STEPS_TOOL
from paigeant.transports.inmemory import InMemoryTransport

StartWorker = Callable[[Worker], "asyncio.Task[None]"]


@activity("summarise", description="Summarise the text so far.")
async def summarise(ctx: ActivityContext) -> str:
    return f"summary #{ctx.arguments.get('n', 0)}"


@activity("translate", description="Translate the text.")
async def translate(ctx: ActivityContext) -> str:
    return "translated"


class Editor:
    """A FunctionModel script: call the add-steps tool with ``steps`` once, then answer."""

    def __init__(self, steps: list[dict[str, Any]]) -> None:
        self.steps = steps
        self.tool_replies: list[str] = []
        self.offered: list[list[str]] = []
        self.instructions: list[str | None] = []

    def __call__(self, messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        self.offered.append([tool.name for tool in info.function_tools])
        self.instructions.append(info.instructions)
        returns = [p for p in messages[-1].parts if isinstance(p, ToolReturnPart)]
        if not returns:
            return ModelResponse(parts=[ToolCallPart(ADD_STEPS_TOOL, {"steps": self.steps})])
        self.tool_replies.append(str(returns[0].content))
        return ModelResponse(parts=[TextPart("planned")])


def editor_agent(name: str, script: Editor, max_added_steps: int = 3) -> PaigeantAgent:
    return PaigeantAgent(
        FunctionModel(script),
        name=name,
        can_edit_itinerary=True,
        known_activities=[summarise, translate],
        max_added_steps=max_added_steps,
    )


async def run(
    transport: InMemoryTransport,
    start_worker: StartWorker,
    hosted: list[Any],
    specs: list[ActivitySpec],
) -> tuple[WorkflowResult, list[WorkflowEvent]]:
    events: list[WorkflowEvent] = []
    start_worker(Worker(transport, hosted))
    dispatcher = WorkflowDispatcher(transport, on_event=events.append)
    correlation_id = await dispatcher.dispatch_workflow(specs)
    result = await dispatcher.wait_for(correlation_id, timeout=10)
    await dispatcher.close()
    return result, events


async def test_the_tool_adds_known_steps_after_the_agent_and_emits_itinerary_revised(
    transport: InMemoryTransport, start_worker: StartWorker
) -> None:
    script = Editor([{"activity": "summarise", "arguments": {"n": 1}}, {"activity": "translate"}])
    agent = editor_agent("editor", script)

    result, events = await run(
        transport,
        start_worker,
        [agent, summarise, translate],
        [ActivitySpec(name="editor", prompt="plan"), ActivitySpec(name="translate")],
    )

    assert result.status == "completed", result.error
    assert [e.name for e in result.activity_log] == [
        "editor",
        "summarise",
        "translate",
        "translate",
    ]
    assert result.outputs["summarise"] == "summary #1"
    assert script.tool_replies[0].startswith("Added 2 step(s)")
    assert ADD_STEPS_TOOL in script.offered[0]
    assert "You may add up to 3 more step(s)" in (script.instructions[0] or "")
    assert "- summarise: Summarise the text so far." in (script.instructions[0] or "")
    revised = [e for e in events if e.type == EventType.ITINERARY_REVISED]
    assert len(revised) == 1
    assert revised[0].activity == "editor"
    assert [spec.name for spec in revised[0].added] == ["summarise", "translate"]


async def test_asking_for_more_than_max_added_steps_is_refused_and_adds_nothing(
    transport: InMemoryTransport, start_worker: StartWorker
) -> None:
    script = Editor([{"activity": "summarise"}] * 3)
    agent = editor_agent("greedy", script, max_added_steps=2)

    result, events = await run(
        transport, start_worker, [agent, summarise], [ActivitySpec(name="greedy")]
    )

    assert result.status == "completed", result.error
    assert [e.name for e in result.activity_log] == ["greedy"]
    assert script.tool_replies[0].startswith("Refused: this workflow may have at most 2 added")
    assert not [e for e in events if e.type == EventType.ITINERARY_REVISED]


async def test_the_limit_counts_steps_added_earlier_in_the_same_workflow(
    transport: InMemoryTransport, start_worker: StartWorker
) -> None:
    first = Editor([{"activity": "summarise"}, {"activity": "translate"}])
    second = Editor([{"activity": "summarise"}, {"activity": "summarise"}])
    agents = [editor_agent("first", first), editor_agent("second", second)]

    result, _ = await run(
        transport,
        start_worker,
        [*agents, summarise, translate],
        [ActivitySpec(name="first"), ActivitySpec(name="second")],
    )

    assert result.status == "completed", result.error
    assert second.tool_replies[0].startswith("Refused")
    assert "only 1 remain" in second.tool_replies[0]
    assert [e.name for e in result.activity_log] == ["first", "summarise", "translate", "second"]


async def test_unknown_activities_are_refused(
    transport: InMemoryTransport, start_worker: StartWorker
) -> None:
    script = Editor([{"activity": "delete-everything"}])
    agent = editor_agent("careful", script)

    result, _ = await run(transport, start_worker, [agent], [ActivitySpec(name="careful")])

    assert result.status == "completed", result.error
    assert script.tool_replies[0].startswith("Refused: unknown activities 'delete-everything'")
    assert [e.name for e in result.activity_log] == ["careful"]


async def test_without_can_edit_itinerary_there_is_no_tool_and_no_step_is_added(
    transport: InMemoryTransport, start_worker: StartWorker
) -> None:
    script = Editor([{"activity": "summarise"}])
    agent = PaigeantAgent(FunctionModel(script), name="plain", known_activities=[summarise])

    result, events = await run(
        transport, start_worker, [agent, summarise], [ActivitySpec(name="plain")]
    )

    # The model asks for the tool anyway: pydantic-ai answers that it does not exist.
    assert result.status == "completed", result.error
    assert script.offered[0] == []
    assert script.tool_replies[0].startswith(f"Unknown tool name: {ADD_STEPS_TOOL!r}")
    assert "You may add" not in (script.instructions[0] or "")
    assert [e.name for e in result.activity_log] == ["plain"]
    assert not [e for e in events if e.type == EventType.ITINERARY_REVISED]


def test_editing_needs_known_activities() -> None:
    with pytest.raises(ValueError, match="known_activities"):
        PaigeantAgent("test", name="lost", can_edit_itinerary=True)
