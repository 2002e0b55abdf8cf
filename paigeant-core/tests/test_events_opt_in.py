"""Which events a slip carries: WorkflowDispatched, and the opt-in per-attempt events."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from paigeant import (
    EVERY_EVENT,
    ActivityContext,
    ActivitySpec,
    ConfigurationError,
    EventType,
    RetryPolicy,
    Subscription,
    Worker,
    WorkflowDispatcher,
    WorkflowEvent,
    activity,
    monitor_queue,
)
from paigeant.testing import Receiver
from paigeant.transports.inmemory import InMemoryTransport

calls: dict[str, int] = {}


@activity("flaky", retry=RetryPolicy(max_attempts=3, initial_delay=0.01, jitter=0))
async def flaky(ctx: ActivityContext) -> str:
    calls[ctx.correlation_id] = calls.get(ctx.correlation_id, 0) + 1
    if ctx.attempt < 3:
        raise RuntimeError(f"attempt {ctx.attempt} failed")
    return "third time lucky"


@activity("steady")
async def steady(ctx: ActivityContext) -> int:
    return 7


async def _drain(
    transport: InMemoryTransport, queue: str, timeout: float = 0.5
) -> list[WorkflowEvent]:
    events = []
    async with Receiver(transport, queue) as receiver:
        while (delivery := await receiver.get(timeout=timeout)) is not None:
            events.append(WorkflowEvent.model_validate_json(delivery.body))
            await delivery.ack()
    return events


def test_subscription_rules() -> None:
    catch_all = Subscription(queue="q")
    assert catch_all.wants("ActivityCompleted") and catch_all.wants("WorkflowDispatched")
    assert not catch_all.wants("ActivityStarted") and not catch_all.wants("ActivityRetried")
    every = Subscription(queue="q", events=[EVERY_EVENT])
    assert all(every.wants(kind) for kind in EventType)
    named = Subscription(queue="q", events=["ActivityStarted"])
    assert named.wants("ActivityStarted") and not named.wants("ActivityCompleted")


async def test_catch_all_subscriptions_get_no_per_attempt_events(
    transport: InMemoryTransport, start_worker: Any
) -> None:
    start_worker(Worker(transport, [flaky, steady]))
    extra = [
        Subscription(queue="all-default"),
        Subscription(queue="every", events=[EVERY_EVENT]),
        Subscription(queue="just-started", events=["ActivityStarted"]),
    ]
    dispatcher = WorkflowDispatcher(transport, subscriptions=extra)
    cid = await dispatcher.dispatch_workflow(
        [ActivitySpec(name="flaky"), ActivitySpec(name="steady")]
    )
    assert (await dispatcher.wait_for(cid, timeout=10)).status == "completed"

    default = [e.type for e in await _drain(transport, "all-default")]
    assert default == [
        EventType.WORKFLOW_DISPATCHED,
        EventType.ACTIVITY_COMPLETED,
        EventType.ACTIVITY_COMPLETED,
        EventType.WORKFLOW_COMPLETED,
    ]
    started = await _drain(transport, "just-started")
    assert [(e.type, e.activity, e.attempt, e.step) for e in started] == [
        (EventType.ACTIVITY_STARTED, "flaky", 1, 0),
        (EventType.ACTIVITY_STARTED, "flaky", 2, 0),
        (EventType.ACTIVITY_STARTED, "flaky", 3, 0),
        (EventType.ACTIVITY_STARTED, "steady", 1, 1),
    ]
    assert len({e.id for e in started}) == 4, "each attempt's event needs its own id"
    every = await _drain(transport, "every")
    retried = [e for e in every if e.type == EventType.ACTIVITY_RETRIED]
    assert [(e.attempt, e.error, e.retry_delay) for e in retried] == [
        (1, "RuntimeError: attempt 1 failed", 0.01),
        (2, "RuntimeError: attempt 2 failed", 0.02),
    ]
    assert sum(e.type == EventType.ACTIVITY_STARTED for e in every) == 4
    assert all(e.id and e.id.startswith(cid) for e in every)
    await dispatcher.close()


async def test_a_slip_without_such_subscriptions_builds_no_per_attempt_event(
    transport: InMemoryTransport, start_worker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[EventType] = []
    original = WorkflowEvent.__init__

    def spy(self: WorkflowEvent, **data: Any) -> None:
        built.append(data["type"])
        original(self, **data)

    monkeypatch.setattr(WorkflowEvent, "__init__", spy)
    start_worker(Worker(transport, [flaky]))
    dispatcher = WorkflowDispatcher(transport)  # reply queue: terminal events only
    cid = await dispatcher.dispatch_workflow([ActivitySpec(name="flaky")])
    assert (await dispatcher.wait_for(cid, timeout=10)).status == "completed"
    assert EventType.ACTIVITY_STARTED not in built and EventType.ACTIVITY_RETRIED not in built
    assert EventType.WORKFLOW_DISPATCHED not in built
    await dispatcher.close()


async def test_dispatched_event_says_what_who_and_when(transport: InMemoryTransport) -> None:
    dispatcher = WorkflowDispatcher(transport, monitor=True, name="billing-api")
    cid = await dispatcher.dispatch_workflow(
        [ActivitySpec(name="steady", arguments={"x": 1})],
        variables={"plan": "pro"},
        obo_token="t0k",
    )
    (event,) = await _drain(transport, monitor_queue())
    assert event.type == EventType.WORKFLOW_DISPATCHED and event.correlation_id == cid
    assert [(s.name, s.arguments) for s in event.itinerary] == [("steady", {"x": 1})]
    assert event.variables == {"plan": "pro"}
    assert event.dispatcher == "billing-api"
    assert event.id == f"{cid}.0.WorkflowDispatched"
    assert "t0k" not in event.model_dump_json()
    await dispatcher.close()


@pytest.mark.parametrize(
    ("argument", "env", "monitored"),
    [
        (None, None, False),
        (None, "1", True),
        (None, "off", False),
        (False, "1", False),
        (True, "0", True),
    ],
)
async def test_monitor_flag_and_environment(
    transport: InMemoryTransport,
    monkeypatch: pytest.MonkeyPatch,
    argument: bool | None,
    env: str | None,
    monitored: bool,
) -> None:
    if env is not None:
        monkeypatch.setenv("PAIGEANT_MONITOR", env)
    dispatcher = WorkflowDispatcher(transport, monitor=argument)
    subscriptions = dispatcher._subscriptions()
    assert (
        any(s.queue == monitor_queue() and s.events == [EVERY_EVENT] for s in subscriptions)
        is monitored
    )


async def test_monitor_queue_follows_the_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    assert monitor_queue() == "paigeant.monitor.events"
    monkeypatch.setenv("PAIGEANT_NAMESPACE", "staging")
    assert monitor_queue() == "staging.monitor.events"


def test_a_bad_monitor_setting_is_a_clear_error(
    transport: InMemoryTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAIGEANT_MONITOR", "maybe")
    with pytest.raises(ConfigurationError, match="PAIGEANT_MONITOR must be 1 or 0"):
        WorkflowDispatcher(transport)


async def test_a_failed_dispatched_event_does_not_fail_the_dispatch(
    transport: InMemoryTransport, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    dispatcher = WorkflowDispatcher(transport, monitor=True)
    real = transport.publish

    async def publish(queue: str, body: bytes, **kwargs: Any) -> None:
        if queue == monitor_queue():
            raise ConnectionError("monitor queue unreachable")
        await real(queue, body, **kwargs)

    monkeypatch.setattr(transport, "publish", publish)
    cid = await dispatcher.dispatch_workflow([ActivitySpec(name="steady")])
    assert "WorkflowDispatched event was not sent" in caplog.text
    async with Receiver(transport, "paigeant.steady") as receiver:
        delivery = await receiver.get(timeout=1)
        assert delivery is not None and cid in delivery.message_id
        await delivery.ack()
    await dispatcher.close()
    await asyncio.sleep(0)
