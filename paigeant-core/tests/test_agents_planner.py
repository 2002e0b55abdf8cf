"""The planner agent: lists activities with descriptions and dispatches a workflow that completes."""

from __future__ import annotations

import asyncio
import json
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
from pydantic_ai.models.test import TestModel

from paigeant import ActivityContext, Worker, WorkflowDispatcher, activity
from paigeant.agents import (
    ActivityInfo,
    PaigeantAgent,
    PlannerAgentDeps,
    create_planner_agent,
    scripted_model,
)
from paigeant.agents.offline_planner import OFFLINE_PLANNER_NAME, choose_steps
from paigeant.transports.inmemory import InMemoryTransport

StartWorker = Callable[[Worker], "asyncio.Task[None]"]


@activity("fetch-data", description="Fetch the customer's records.")
async def fetch_data(ctx: ActivityContext) -> dict[str, Any]:
    return {"records": 3, "customer": ctx.arguments.get("customer")}


@activity("send-report", description="Email the report to the customer.")
async def send_report(ctx: ActivityContext) -> str:
    return f"sent: {ctx.previous_output}"


analyst = PaigeantAgent(
    scripted_model(lambda prompt, instructions: f"analysed ({prompt})"),
    name="analyse",
    description="Analyse the fetched records.",
)


class Planner:
    """A FunctionModel script: list activities, dispatch three steps, answer with the id."""

    def __init__(self, steps: list[dict[str, Any]]) -> None:
        self.steps = steps
        self.listed: Any = None
        self.dispatch_reply: str = ""

    def __call__(self, messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        returns = [p for p in messages[-1].parts if isinstance(p, ToolReturnPart)]
        if not returns:
            return ModelResponse(parts=[ToolCallPart("list_activities", {})])
        if returns[0].tool_name == "list_activities":
            self.listed = returns[0].content
            return ModelResponse(parts=[ToolCallPart("dispatch_workflow", {"steps": self.steps})])
        self.dispatch_reply = str(returns[0].content)
        return ModelResponse(parts=[TextPart(f"Dispatched workflow {self.dispatch_reply}")])


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PAIGEANT_MODEL", raising=False)


async def test_planner_dispatches_a_three_step_workflow_that_completes(
    transport: InMemoryTransport, start_worker: StartWorker
) -> None:
    start_worker(Worker(transport, [fetch_data, analyst, send_report]))
    script = Planner(
        [
            {"activity": "fetch-data", "arguments": {"customer": "acme"}},
            {"activity": "analyse", "prompt": "Find trends."},
            {"activity": "send-report"},
        ]
    )
    planner = create_planner_agent(FunctionModel(script))
    dispatcher = WorkflowDispatcher(transport)
    deps = PlannerAgentDeps(
        workflow_dispatcher=dispatcher,
        activities=[fetch_data, analyst, send_report],
        variables={"requested_by": "test"},
    )

    answer = await planner.run("Report on acme's records", deps=deps)

    assert script.listed == [
        {"name": "fetch-data", "description": "Fetch the customer's records."},
        {"name": "analyse", "description": "Analyse the fetched records."},
        {"name": "send-report", "description": "Email the report to the customer."},
    ]
    assert len(deps.dispatched) == 1
    correlation_id = deps.dispatched[0]
    assert script.dispatch_reply == correlation_id
    assert correlation_id in answer.output
    result = await dispatcher.wait_for(correlation_id, timeout=10)
    await dispatcher.close()
    assert result.status == "completed", result.error
    assert [e.name for e in result.activity_log] == ["fetch-data", "analyse", "send-report"]
    assert result.outputs["analyse"] == "analysed (Find trends.)"
    assert result.output == "sent: analysed (Find trends.)"
    assert result.variables == {"requested_by": "test"}


async def test_planner_refuses_unknown_activities(transport: InMemoryTransport) -> None:
    script = Planner([{"activity": "fetch-data"}, {"activity": "format-disk"}])
    planner = create_planner_agent(FunctionModel(script))
    dispatcher = WorkflowDispatcher(transport)
    deps = PlannerAgentDeps(workflow_dispatcher=dispatcher, activities=[fetch_data])

    await planner.run("do it", deps=deps)
    await dispatcher.close()

    assert deps.dispatched == []
    assert script.dispatch_reply.startswith("Refused: unknown activities 'format-disk'")


def test_planner_defaults_to_the_offline_planner_and_takes_infos_and_names() -> None:
    planner = create_planner_agent()
    assert isinstance(planner.model, FunctionModel)
    assert planner.model.model_name == OFFLINE_PLANNER_NAME
    deps = PlannerAgentDeps(
        workflow_dispatcher=WorkflowDispatcher(InMemoryTransport()),
        activities=["bare-name", ActivityInfo("described", "Does things."), fetch_data],
    )
    assert json.dumps([(i.name, i.description) for i in deps.known().values()]) == json.dumps(
        [("bare-name", ""), ("described", "Does things."), ("fetch-data", fetch_data.description)]
    )


def test_planner_uses_the_named_model_when_given() -> None:
    assert isinstance(create_planner_agent("test").model, TestModel)


@activity("check-invoice", description="Invoice handling, step 1: check the totals.")
async def check_invoice(ctx: ActivityContext) -> str:
    return "checked"


@activity("pay-invoice", description="Invoice handling, step 2: pay the supplier.")
async def pay_invoice(ctx: ActivityContext) -> str:
    return f"paid after {ctx.previous_output}"


@activity("archive", description="Store a document.")
async def archive(ctx: ActivityContext) -> str:
    return "archived"


CATALOG = [
    {"name": "archive", "description": "Store a document."},
    {"name": "pay-invoice", "description": "Invoice handling, step 2: pay the supplier."},
    {"name": "check-invoice", "description": "Invoice handling, step 1: check the totals."},
    {"name": "send-report", "description": "Email the report to the customer."},
]


@pytest.mark.parametrize(
    ("request_text", "expected"),
    [
        # by description, in the order the descriptions give (step 1, step 2)
        ("Handle this invoice", ["check-invoice", "pay-invoice"]),
        # by name, in the order the request names them
        ("archive it, then send report", ["archive", "send-report"]),
        ("send-report and archive", ["send-report", "archive"]),
        # step numbers first, then names in request order
        ("send report, archive and pay-invoice", ["pay-invoice", "send-report", "archive"]),
        # common words choose nothing
        ("Create a workflow please", []),
        ("", []),
    ],
)
def test_offline_planner_chooses_steps(request_text: str, expected: list[str]) -> None:
    assert choose_steps(request_text, CATALOG) == expected


async def test_offline_planner_dispatches_what_the_request_describes(
    transport: InMemoryTransport, start_worker: StartWorker
) -> None:
    start_worker(Worker(transport, [check_invoice, pay_invoice, archive]))
    dispatcher = WorkflowDispatcher(transport)
    deps = PlannerAgentDeps(
        workflow_dispatcher=dispatcher, activities=[archive, pay_invoice, check_invoice]
    )

    answer = await create_planner_agent().run("Handle the March invoice", deps=deps)

    (correlation_id,) = deps.dispatched
    assert correlation_id in answer.output
    result = await dispatcher.wait_for(correlation_id, timeout=10)
    await dispatcher.close()
    assert [entry.name for entry in result.activity_log] == ["check-invoice", "pay-invoice"]
    assert result.output == "paid after checked"


async def test_offline_planner_with_no_activities_says_so(transport: InMemoryTransport) -> None:
    dispatcher = WorkflowDispatcher(transport)
    deps = PlannerAgentDeps(workflow_dispatcher=dispatcher)

    answer = await create_planner_agent().run("Create a customer onboarding workflow", deps=deps)
    await dispatcher.close()

    assert deps.dispatched == []
    assert answer.output.startswith("No activities are known, so no workflow was dispatched")


async def test_offline_planner_with_no_match_names_the_known_activities(
    transport: InMemoryTransport,
) -> None:
    dispatcher = WorkflowDispatcher(transport)
    deps = PlannerAgentDeps(workflow_dispatcher=dispatcher, activities=[archive, check_invoice])

    answer = await create_planner_agent().run("Book a flight to Lisbon", deps=deps)
    await dispatcher.close()

    assert deps.dispatched == []
    assert "None of the known activities (archive, check-invoice) matches" in answer.output


async def test_dispatch_tool_refuses_when_no_activities_are_known(
    transport: InMemoryTransport,
) -> None:
    script = Planner([{"activity": "fetch-data"}])
    dispatcher = WorkflowDispatcher(transport)
    deps = PlannerAgentDeps(workflow_dispatcher=dispatcher)

    await create_planner_agent(FunctionModel(script)).run("do it", deps=deps)
    await dispatcher.close()

    assert deps.dispatched == []
    assert script.dispatch_reply.startswith("Refused: no activities are known")
