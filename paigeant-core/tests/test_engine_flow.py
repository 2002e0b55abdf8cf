"""Routing-slip semantics on the in-memory transport: data flow, revisions, events, tracing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from paigeant import (
    ActivityContext,
    ActivitySpec,
    EventType,
    Subscription,
    Worker,
    WorkflowDispatcher,
    WorkflowEvent,
    activity,
    get_transport,
)
from paigeant.testing import Receiver
from paigeant.transports.inmemory import InMemoryTransport
from paigeant.workflow.codec import parse_message
from paigeant.workflow.tracing import trace_id


@activity("validate-input")
async def validate_input(ctx: ActivityContext) -> dict[str, Any]:
    ctx.variables["validated"] = True
    return {"email": ctx.arguments.get("email", "a@b.c")}


@activity("create-account")
async def create_account(ctx: ActivityContext) -> dict[str, Any]:
    ctx.variables["account_id"] = "a-1"
    return {"created": ctx.previous_output["email"], "saw_validated": ctx.variables["validated"]}


@activity("send-notification")
async def send_notification(ctx: ActivityContext) -> dict[str, Any]:
    return {"to": ctx.outputs["create-account"]["created"], "account": ctx.variables["account_id"]}


ONBOARDING = [validate_input, create_account, send_notification]


async def test_seed_quick_start_prints_correlation_id(capsys: pytest.CaptureFixture[str]) -> None:
    transport = get_transport()
    await transport.connect()
    dispatcher = WorkflowDispatcher(transport)
    correlation_id = await dispatcher.dispatch_workflow(
        [
            ActivitySpec(name="validate-input"),
            ActivitySpec(name="create-account"),
            ActivitySpec(name="send-notification"),
        ]
    )
    print(f"Workflow dispatched: {correlation_id}")
    await transport.disconnect()
    assert capsys.readouterr().out.strip() == f"Workflow dispatched: {correlation_id}"


async def test_outputs_and_variables_flow_along_the_slip(
    transport: InMemoryTransport, start_worker: Any
) -> None:
    start_worker(Worker(transport, ONBOARDING))
    dispatcher = WorkflowDispatcher(transport)
    cid = await dispatcher.dispatch_workflow(
        [ActivitySpec(name=a.name) for a in ONBOARDING],
        variables={"plan": "pro"},
    )
    result = await dispatcher.wait_for(cid, timeout=10)
    assert result.status == "completed"
    assert result.variables == {"plan": "pro", "validated": True, "account_id": "a-1"}
    assert result.outputs["create-account"] == {"created": "a@b.c", "saw_validated": True}
    assert result.outputs["send-notification"] == {"to": "a@b.c", "account": "a-1"}
    assert [e.name for e in result.activity_log] == [
        "validate-input",
        "create-account",
        "send-notification",
    ]
    assert all(e.attempt == 1 for e in result.activity_log)


async def test_same_activity_twice_keeps_both_log_entries(
    transport: InMemoryTransport, start_worker: Any
) -> None:
    @activity("increment")
    async def increment(ctx: ActivityContext) -> int:
        ctx.variables["n"] = ctx.variables.get("n", 0) + 1
        return int(ctx.variables["n"])

    start_worker(Worker(transport, [increment]))
    dispatcher = WorkflowDispatcher(transport)
    cid = await dispatcher.dispatch_workflow([ActivitySpec(name="increment")] * 2)
    result = await dispatcher.wait_for(cid, timeout=10)
    assert [(e.name, e.output) for e in result.activity_log] == [("increment", 1), ("increment", 2)]


async def test_empty_itinerary_is_a_clear_error(transport: InMemoryTransport) -> None:
    with pytest.raises(ValueError, match="empty itinerary"):
        await WorkflowDispatcher(transport).dispatch_workflow([])


async def test_reusing_a_dispatcher_does_not_leak_steps(
    transport: InMemoryTransport, start_worker: Any
) -> None:
    start_worker(Worker(transport, ONBOARDING))
    dispatcher = WorkflowDispatcher(transport)
    specs = [ActivitySpec(name="validate-input")]
    first = await dispatcher.dispatch_workflow(specs)
    specs.append(ActivitySpec(name="create-account"))  # caller mutates its own list afterwards
    second = await dispatcher.dispatch_workflow([ActivitySpec(name="validate-input")])
    for cid in (first, second):
        result = await dispatcher.wait_for(cid, timeout=10)
        assert [e.name for e in result.activity_log] == ["validate-input"]


async def test_wait_for_times_out_when_no_worker_runs(transport: InMemoryTransport) -> None:
    dispatcher = WorkflowDispatcher(transport)
    cid = await dispatcher.dispatch_workflow([ActivitySpec(name="validate-input")])
    with pytest.raises(TimeoutError, match=cid):
        await dispatcher.wait_for(cid, timeout=0.2)


async def test_terminate_ends_without_running_the_rest_or_compensating(
    transport: InMemoryTransport, start_worker: Any
) -> None:
    ran: list[str] = []

    @activity("charge")
    async def charge(ctx: ActivityContext) -> str:
        ran.append("charge")
        return "charged"

    @charge.compensate
    async def refund(ctx: ActivityContext) -> None:
        ran.append("refund")

    @activity("check")
    async def check(ctx: ActivityContext) -> None:
        ran.append("check")
        ctx.terminate("customer already onboarded")

    @activity("never")
    async def never(ctx: ActivityContext) -> None:
        ran.append("never")

    start_worker(Worker(transport, [charge, check, never]))
    dispatcher = WorkflowDispatcher(transport)
    cid = await dispatcher.dispatch_workflow(
        [ActivitySpec(name="charge"), ActivitySpec(name="check"), ActivitySpec(name="never")]
    )
    result = await dispatcher.wait_for(cid, timeout=10)
    assert result.status == "terminated"
    assert result.reason == "customer already onboarded"
    await asyncio.sleep(0.1)
    assert ran == ["charge", "check"]


async def test_add_activities_inserts_after_current_step_and_emits_revision(
    transport: InMemoryTransport, start_worker: Any
) -> None:
    events: list[WorkflowEvent] = []

    @activity("plan")
    async def plan(ctx: ActivityContext) -> None:
        ctx.add_activities(
            [
                ActivitySpec(name="extra", arguments={"i": 1}),
                {"name": "extra", "arguments": {"i": 2}},
            ]
        )

    @activity("extra")
    async def extra(ctx: ActivityContext) -> int:
        return int(ctx.arguments["i"])

    @activity("finish")
    async def finish(ctx: ActivityContext) -> str:
        return "done"

    start_worker(Worker(transport, [plan, extra, finish]))
    dispatcher = WorkflowDispatcher(transport, on_event=events.append)
    cid = await dispatcher.dispatch_workflow(
        [ActivitySpec(name="plan"), ActivitySpec(name="finish")]
    )
    result = await dispatcher.wait_for(cid, timeout=10)
    assert [(e.name, e.output) for e in result.activity_log] == [
        ("plan", None),
        ("extra", 1),
        ("extra", 2),
        ("finish", "done"),
    ]
    revised = [e for e in events if e.type == EventType.ITINERARY_REVISED]
    assert len(revised) == 1
    assert [s.arguments["i"] for s in revised[0].added] == [1, 2]
    assert revised[0].activity == "plan"


async def test_events_reach_subscribers_and_trace_continues_hop_to_hop(
    transport: InMemoryTransport, start_worker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAIGEANT_EVENTS_QUEUE", "monitoring")
    start_worker(Worker(transport, ONBOARDING))
    seen: list[WorkflowEvent] = []
    dispatcher = WorkflowDispatcher(transport, on_event=seen.append)
    cid = await dispatcher.dispatch_workflow([ActivitySpec(name=a.name) for a in ONBOARDING])
    await dispatcher.wait_for(cid, timeout=10)
    assert [(e.type, e.activity) for e in seen] == [
        (EventType.WORKFLOW_DISPATCHED, None),
        (EventType.ACTIVITY_COMPLETED, "validate-input"),
        (EventType.ACTIVITY_COMPLETED, "create-account"),
        (EventType.ACTIVITY_COMPLETED, "send-notification"),
        (EventType.WORKFLOW_COMPLETED, None),
    ]
    traceparents = []
    async with Receiver(transport, "monitoring") as monitor:
        for _ in range(5):
            delivery = await monitor.get(timeout=2)
            assert delivery is not None
            traceparents.append(delivery.headers["traceparent"])
            await delivery.ack()
    assert len({trace_id(t) for t in traceparents}) == 1 and trace_id(traceparents[0])
    # WorkflowDispatched and the first step share the root span; each hop has a new one.
    assert traceparents[0] == traceparents[1]
    assert len(set(traceparents[1:4])) == 3, "each hop continues the trace with a new span"


async def test_default_dispatcher_only_receives_terminal_events(
    transport: InMemoryTransport, start_worker: Any
) -> None:
    start_worker(Worker(transport, ONBOARDING))
    dispatcher = WorkflowDispatcher(transport)
    cid = await dispatcher.dispatch_workflow([ActivitySpec(name="validate-input")])
    assert (await dispatcher.wait_for(cid, timeout=10)).status == "completed"
    async with Receiver(transport, dispatcher.reply_queue) as replies:
        assert await replies.get(timeout=0.2) is None


async def test_results_false_sends_nothing_back_and_makes_no_reply_queue(
    transport: InMemoryTransport, start_worker: Any
) -> None:
    dispatcher = WorkflowDispatcher(transport, subscriptions=[Subscription(queue="mine.events")])
    cid = await dispatcher.dispatch_workflow([ActivitySpec(name="validate-input")], results=False)
    async with Receiver(transport, "paigeant.validate-input") as first_hop:
        delivery = await first_hop.get()
        assert delivery is not None
        slip = parse_message(delivery.body).routing_slip
        assert [sub.queue for sub in slip.subscriptions] == ["mine.events"]
        await delivery.nack()
    start_worker(Worker(transport, ONBOARDING))
    async with Receiver(transport, "mine.events") as mine:
        seen = []
        while (event := await mine.get(timeout=10)) is not None:
            await event.ack()
            seen.append(WorkflowEvent.model_validate_json(event.body).type)
            if seen[-1] == EventType.WORKFLOW_COMPLETED:
                break
    assert seen[-1] == EventType.WORKFLOW_COMPLETED, seen
    assert dispatcher._listener is None, "a results=False dispatch started a reply consumer"
    with pytest.raises(ValueError, match=f"{cid} was dispatched with results=False"):
        await dispatcher.wait_for(cid, timeout=1)
    deleted: list[str] = []
    transport.delete_queue = deleted.append  # type: ignore[assignment,method-assign]
    await dispatcher.close()
    assert deleted == [], "close() removed a reply queue that was never made"


async def test_results_false_with_on_event_is_refused(transport: InMemoryTransport) -> None:
    dispatcher = WorkflowDispatcher(transport, on_event=lambda event: None)
    with pytest.raises(ValueError, match="on_event would never see the workflow"):
        await dispatcher.dispatch_workflow([ActivitySpec(name="validate-input")], results=False)
    async with Receiver(transport, "paigeant.validate-input") as first_hop:
        assert await first_hop.get(timeout=0.2) is None, "a refused dispatch was sent"


async def test_a_dispatcher_mixing_results_waits_only_for_its_answered_workflows(
    transport: InMemoryTransport, start_worker: Any
) -> None:
    start_worker(Worker(transport, ONBOARDING))
    dispatcher = WorkflowDispatcher(transport)
    forgotten = await dispatcher.dispatch_workflow(
        [ActivitySpec(name="validate-input")], results=False
    )
    answered = await dispatcher.dispatch_workflow([ActivitySpec(name="validate-input")])
    assert (await dispatcher.wait_for(answered, timeout=10)).status == "completed"
    with pytest.raises(ValueError, match="results=False"):
        await dispatcher.wait_for(forgotten)
    again = await dispatcher.dispatch_workflow(
        [ActivitySpec(name="validate-input")], correlation_id=forgotten
    )
    assert (await dispatcher.wait_for(again, timeout=10)).status == "completed"
    await dispatcher.close()


async def test_several_workers_share_one_activity_type(
    transport: InMemoryTransport, start_worker: Any
) -> None:
    @activity("slow-echo")
    async def slow_echo(ctx: ActivityContext) -> str:
        await asyncio.sleep(0.02)
        return ctx.worker

    start_worker(Worker(transport, [slow_echo], concurrency=2, name="w1"))
    start_worker(Worker(transport, [slow_echo], concurrency=2, name="w2"))
    dispatcher = WorkflowDispatcher(transport)
    cids = [await dispatcher.dispatch_workflow([ActivitySpec(name="slow-echo")]) for _ in range(20)]
    results = [await dispatcher.wait_for(cid, timeout=10) for cid in cids]
    assert all(r.status == "completed" for r in results)
    assert {r.output for r in results} == {"w1", "w2"}


async def test_worker_rejects_bad_configuration(transport: InMemoryTransport) -> None:
    with pytest.raises(ValueError, match="at least one activity"):
        Worker(transport, [])
    with pytest.raises(ValueError, match="concurrency"):
        Worker(transport, ONBOARDING, concurrency=0)
    with pytest.raises(TypeError, match="async function"):
        activity("sync")(lambda ctx: None)  # type: ignore[arg-type]
