"""PaigeantAgent as an activity: outputs, previous output, deps rebuilt, deps faults, variables."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel
from pydantic_ai import RunContext
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel

from paigeant import ActivitySpec, RetryPolicy, Worker, WorkflowDispatcher, WorkflowResult
from paigeant.agents import PaigeantAgent, WorkflowDependencies, scripted_model
from paigeant.transports.inmemory import InMemoryTransport
from paigeant.workflow.messages import DepsEnvelope

StartWorker = Callable[[Worker], "asyncio.Task[None]"]


async def run_workflow(
    transport: InMemoryTransport,
    start_worker: StartWorker,
    agents: list[Any],
    specs: list[ActivitySpec],
    **dispatch: Any,
) -> WorkflowResult:
    start_worker(Worker(transport, agents))
    dispatcher = WorkflowDispatcher(transport)
    correlation_id = await dispatcher.dispatch_workflow(specs, **dispatch)
    result = await dispatcher.wait_for(correlation_id, timeout=10)
    await dispatcher.close()
    return result


class Joke(BaseModel):
    setup: str
    punchline: str


class RateDeps(WorkflowDependencies):
    previous_output: Joke | None = None


class TopicDeps(WorkflowDependencies):
    topic: str
    audience: str = "everyone"


class ExtendedDeps(TopicDeps):
    extra: int = 0


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PAIGEANT_MODEL", raising=False)


def writer() -> PaigeantAgent[WorkflowDependencies, Joke]:
    return PaigeantAgent(
        scripted_model(lambda prompt, instructions: {"setup": "Why?", "punchline": "Because."}),
        name="writer",
        output_type=Joke,
    )


async def test_structured_output_is_recorded_as_json_and_rebuilt_for_the_next_agent(
    transport: InMemoryTransport, start_worker: StartWorker
) -> None:
    seen: list[object] = []
    rater = PaigeantAgent(scripted_model(lambda p, i: "8/10"), name="rater", deps_type=RateDeps)

    @rater.instructions
    def record(ctx: RunContext[RateDeps]) -> str:
        seen.append(ctx.deps.previous_output)
        return ""

    result = await run_workflow(
        transport,
        start_worker,
        [writer(), rater],
        [ActivitySpec(name="writer", prompt="a joke"), ActivitySpec(name="rater")],
    )

    assert result.status == "completed", result.error
    assert result.outputs == {"writer": {"setup": "Why?", "punchline": "Because."}, "rater": "8/10"}
    assert seen == [Joke(setup="Why?", punchline="Because.")]
    assert isinstance(seen[0], Joke)


async def test_previous_output_reaches_the_model_through_instructions(
    transport: InMemoryTransport, start_worker: StartWorker
) -> None:
    captured: list[tuple[str | None, list[ModelMessage]]] = []

    def capture(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        captured.append((info.instructions, messages))
        return ModelResponse(parts=[TextPart("ok")])

    reader = PaigeantAgent(FunctionModel(capture), name="reader", instructions="Be brief.")
    result = await run_workflow(
        transport,
        start_worker,
        [writer(), reader],
        [ActivitySpec(name="writer"), ActivitySpec(name="reader", prompt="Rate it.")],
    )

    assert result.status == "completed", result.error
    instructions, messages = captured[0]
    assert instructions is not None
    assert instructions.startswith("Be brief.")
    assert "previous step of this workflow produced this output" in instructions
    assert '"punchline": "Because."' in instructions
    assert "Rate it." in str(messages[0])


async def test_first_step_has_no_previous_output_instructions_and_a_default_prompt(
    transport: InMemoryTransport, start_worker: StartWorker
) -> None:
    captured: list[tuple[str | None, str]] = []

    def capture(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        first = messages[0]
        assert isinstance(first, ModelRequest) and isinstance(first.parts[0], UserPromptPart)
        captured.append((info.instructions, str(first.parts[0].content)))
        return ModelResponse(parts=[TextPart("ok")])

    agent = PaigeantAgent(FunctionModel(capture), name="first")
    result = await run_workflow(
        transport, start_worker, [agent], [ActivitySpec(name="first", arguments={"n": 2})]
    )

    assert result.status == "completed", result.error
    instructions, request = captured[0]
    assert not instructions
    assert "Carry out the workflow step 'first'" in request
    assert request == "Carry out the workflow step 'first'. Arguments: {\"n\": 2}"


async def test_deps_given_at_dispatch_are_rebuilt_and_workflow_fields_filled(
    transport: InMemoryTransport, start_worker: StartWorker
) -> None:
    seen: list[TopicDeps] = []
    agent = PaigeantAgent(scripted_model(lambda p, i: i), name="topical", deps_type=TopicDeps)

    @agent.instructions
    def brief(ctx: RunContext[TopicDeps]) -> str:
        seen.append(ctx.deps)
        return f"Topic: {ctx.deps.topic} for {ctx.deps.audience}"

    result = await run_workflow(
        transport,
        start_worker,
        [agent],
        [ActivitySpec(name="topical", deps=TopicDeps(topic="slips", audience="devs"))],
        variables={"plan": "pro"},
    )

    assert result.status == "completed", result.error
    assert result.output == "Topic: slips for devs"
    deps = seen[0]
    assert type(deps) is TopicDeps
    assert deps.correlation_id == result.correlation_id
    assert deps.variables == {"plan": "pro"}
    assert deps.user_claims == {}
    assert deps.previous_output is None


async def test_a_subclass_of_the_declared_deps_type_is_rebuilt_as_itself(
    transport: InMemoryTransport, start_worker: StartWorker
) -> None:
    seen: list[WorkflowDependencies] = []
    agent = PaigeantAgent(scripted_model(lambda p, i: "ok"), name="sub", deps_type=TopicDeps)

    @agent.instructions
    def record(ctx: RunContext[TopicDeps]) -> None:
        seen.append(ctx.deps)

    result = await run_workflow(
        transport,
        start_worker,
        [agent],
        [ActivitySpec(name="sub", deps=ExtendedDeps(topic="t", extra=5))],
    )

    assert result.status == "completed", result.error
    assert type(seen[0]) is ExtendedDeps
    assert seen[0].extra == 5


async def test_unimportable_deps_type_faults_the_workflow_with_the_reason_without_retries(
    transport: InMemoryTransport, start_worker: StartWorker
) -> None:
    agent = PaigeantAgent(
        scripted_model(lambda p, i: "ok"),
        name="needs-deps",
        deps_type=TopicDeps,
        retry=RetryPolicy(max_attempts=3, initial_delay=0.01),
    )
    envelope = DepsEnvelope(type="no_such_module.deps:TopicDeps", data={"topic": "x"})

    result = await run_workflow(
        transport, start_worker, [agent], [ActivitySpec(name="needs-deps", deps=envelope)]
    )

    assert result.status == "faulted"
    assert result.fault is not None
    assert result.fault.error_type == "NonRetryableError"
    assert result.fault.attempt == 1
    assert "cannot import deps type 'no_such_module.deps:TopicDeps'" in result.fault.error
    assert "PYTHONPATH" in result.fault.error


async def test_deps_of_another_type_fault_with_what_was_expected(
    transport: InMemoryTransport, start_worker: StartWorker
) -> None:
    agent = PaigeantAgent(scripted_model(lambda p, i: "ok"), name="typed", deps_type=RateDeps)

    result = await run_workflow(
        transport, start_worker, [agent], [ActivitySpec(name="typed", deps=TopicDeps(topic="x"))]
    )

    assert result.status == "faulted"
    assert "this agent expects" in (result.error or "")


async def test_missing_required_deps_fault_with_a_hint(
    transport: InMemoryTransport, start_worker: StartWorker
) -> None:
    agent = PaigeantAgent(scripted_model(lambda p, i: "ok"), name="topical", deps_type=TopicDeps)

    result = await run_workflow(transport, start_worker, [agent], [ActivitySpec(name="topical")])

    assert result.status == "faulted"
    assert "ActivitySpec(deps=...)" in (result.error or "")
    assert result.fault is not None and result.fault.attempt == 1


async def test_previous_output_that_does_not_match_the_declared_type_faults(
    transport: InMemoryTransport, start_worker: StartWorker
) -> None:
    plain = PaigeantAgent(scripted_model(lambda p, i: "just text"), name="plain")
    rater = PaigeantAgent(scripted_model(lambda p, i: "ok"), name="rater", deps_type=RateDeps)

    result = await run_workflow(
        transport,
        start_worker,
        [plain, rater],
        [ActivitySpec(name="plain"), ActivitySpec(name="rater")],
    )

    assert result.status == "faulted"
    assert result.fault is not None and result.fault.activity == "rater"


async def test_tools_can_change_workflow_variables(
    transport: InMemoryTransport, start_worker: StartWorker
) -> None:
    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        if not any(isinstance(p, ToolReturnPart) for p in messages[-1].parts):
            return ModelResponse(parts=[ToolCallPart("remember", {"value": "blue"})])
        return ModelResponse(parts=[TextPart("remembered")])

    agent = PaigeantAgent(FunctionModel(model), name="memo")

    @agent.tool
    def remember(ctx: RunContext[WorkflowDependencies], value: str) -> str:
        ctx.deps.variables["colour"] = value
        return "ok"

    result = await run_workflow(
        transport, start_worker, [agent], [ActivitySpec(name="memo")], variables={"keep": 1}
    )

    assert result.status == "completed", result.error
    assert result.variables == {"keep": 1, "colour": "blue"}


async def test_the_test_model_runs_an_agent_step_offline(
    transport: InMemoryTransport, start_worker: StartWorker
) -> None:
    agent = PaigeantAgent("test", name="tested")
    result = await run_workflow(transport, start_worker, [agent], [ActivitySpec(name="tested")])
    assert result.status == "completed", result.error
    assert result.output == "success (no tool calls)"


def test_as_activity_is_stable_and_carries_retry_timeout_and_description() -> None:
    policy = RetryPolicy(max_attempts=5)
    agent = PaigeantAgent(
        TestModel(), name="steady", retry=policy, timeout=12.5, system_prompt="Do steady things."
    )
    activity = agent.as_activity()
    assert agent.as_activity() is activity
    assert activity.name == "steady"
    assert activity.retry == policy
    assert activity.timeout == 12.5
    assert activity.description == "Do steady things."
    assert Worker(InMemoryTransport(), [agent, agent]).activities == {"steady": activity}


def test_invalid_names_and_deps_types_are_rejected_early() -> None:
    with pytest.raises(ValueError, match="invalid activity name"):
        PaigeantAgent(TestModel(), name="bad name")

    class NotDeps(BaseModel):
        x: int = 0

    with pytest.raises(TypeError, match="WorkflowDependencies"):
        PaigeantAgent(TestModel(), name="ok", deps_type=NotDeps)  # type: ignore[type-var]
