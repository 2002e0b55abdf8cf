"""Property: every order of a real workflow's events folds into the same record.

The events are captured from real workflows run by a worker, a dispatcher and a monitor on the
in-memory transport: retries with revisions, a fault with compensation, a failed compensation
and a termination. Hypothesis then shuffles each workflow's events and folds them.
"""

from __future__ import annotations

import asyncio
import collections
import functools
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paigeant import (
    ActivityContext,
    ActivitySpec,
    HmacSigner,
    MemoryWorkflowStore,
    Monitor,
    NonRetryableError,
    RetryPolicy,
    Worker,
    WorkflowDispatcher,
    WorkflowEvent,
    WorkflowRecord,
    activity,
)
from paigeant.transports.inmemory import InMemoryTransport

SIGNER = HmacSigner(b"k" * 32, key_id="tests")
FAST = RetryPolicy(max_attempts=3, initial_delay=0.01, jitter=0)
_attempts: collections.Counter[str] = collections.Counter()


@activity("order-flaky", retry=FAST)
async def flaky(ctx: ActivityContext) -> dict[str, int]:
    _attempts[ctx.correlation_id] += 1
    if _attempts[ctx.correlation_id] < 3:
        raise RuntimeError(f"flaky {_attempts[ctx.correlation_id]}")
    return {"ok": _attempts[ctx.correlation_id]}


@activity("order-reserve")
async def reserve(ctx: ActivityContext) -> dict[str, str]:
    return {"seat": "12A"}


@reserve.compensate
async def release(ctx: ActivityContext) -> None:
    return None


@activity("order-hold")
async def hold(ctx: ActivityContext) -> str:
    return "held"


@hold.compensate
async def unhold(ctx: ActivityContext) -> None:
    if ctx.variables.get("break_unhold"):
        raise NonRetryableError("cannot unhold")


@activity("order-plan")
async def plan(ctx: ActivityContext) -> str:
    ctx.variables["planned"] = True
    ctx.add_activities(
        [ActivitySpec(name="order-extra", arguments={"i": 1}), ActivitySpec(name="order-extra")]
    )
    return "planned"


@activity("order-extra")
async def extra(ctx: ActivityContext) -> int:
    if ctx.arguments.get("i") == 1:
        ctx.add_activities([ActivitySpec(name="order-ticket")])
    return 1


@activity("order-ticket")
async def ticket(ctx: ActivityContext) -> str:
    return "T-1"


@activity("order-charge", retry=RetryPolicy(max_attempts=2, initial_delay=0.01, jitter=0))
async def charge(ctx: ActivityContext) -> None:
    raise RuntimeError("card declined")


@activity("order-stop")
async def stop(ctx: ActivityContext) -> str:
    ctx.terminate("nothing more to do")
    return "stopped"


class Capturing(MemoryWorkflowStore):
    """A memory store that also keeps a copy of every event it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.captured: list[WorkflowEvent] = []

    async def record_many(self, events: Sequence[WorkflowEvent]) -> int:
        self.captured += [event.model_copy(deep=True) for event in events]
        return await super().record_many(events)


SCENARIOS = {
    "retries and revisions": ["order-flaky", "order-plan", "order-reserve"],
    "fault and compensation": [
        "order-reserve",
        "order-hold",
        "order-flaky",
        "order-charge",
        "order-ticket",
    ],
    "compensation failed": ["order-reserve", "order-hold", "order-charge"],
    "terminated": ["order-reserve", "order-stop", "order-ticket"],
}


async def _capture() -> dict[str, list[WorkflowEvent]]:
    store = Capturing()
    async with InMemoryTransport() as transport:
        activities = [flaky, reserve, hold, plan, extra, ticket, charge, stop]
        worker = Worker(transport, activities, signer=SIGNER, handle_signals=False)
        monitor = Monitor(transport, store, signer=SIGNER)
        tasks = [asyncio.ensure_future(worker.run()), asyncio.ensure_future(monitor.run())]
        dispatcher = WorkflowDispatcher(transport, signer=SIGNER, monitor=True)
        try:
            cids = {}
            for name, steps in SCENARIOS.items():
                variables = {"break_unhold": True} if name == "compensation failed" else {}
                cids[name] = await dispatcher.dispatch_workflow(
                    [ActivitySpec(name=step) for step in steps], variables=variables
                )
            for cid in cids.values():
                await dispatcher.wait_for(cid, timeout=10)
                await monitor.wait_recorded(cid, timeout=10)
        finally:
            worker.stop()
            monitor.stop()
            await asyncio.gather(*tasks)
            await dispatcher.close()
    return {
        name: [event for event in store.captured if event.correlation_id == cid]
        for name, cid in cids.items()
    }


@functools.cache
def captured() -> dict[str, list[WorkflowEvent]]:
    """The real events of each scenario's workflow (captured once per test session)."""
    return asyncio.run(_capture())


def fold(events: Sequence[WorkflowEvent]) -> dict[str, Any]:
    """The record folded from ``events`` in this order, with its derived views."""
    record = WorkflowRecord.from_event(events[0])
    for event in events[1:]:
        record.apply(event)
    data = record.model_dump(mode="json")
    data["revised_itinerary"] = [spec.name for spec in record.revised_itinerary]
    data["pending"] = record.pending
    data["summary"] = record.summary().model_dump(mode="json")
    return data


def test_the_scenarios_emit_what_they_are_about() -> None:
    kinds = {name: {str(e.type) for e in events} for name, events in captured().items()}
    assert {"ActivityRetried", "ItineraryRevised"} <= kinds["retries and revisions"]
    assert {"ActivityCompensated", "WorkflowFaulted"} <= kinds["fault and compensation"]
    assert "WorkflowCompensationFailed" in kinds["compensation failed"]
    assert "WorkflowTerminated" in kinds["terminated"]


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_every_order_of_a_workflows_events_gives_the_same_record(
    scenario: str, data: st.DataObject
) -> None:
    events = captured()[scenario]
    expected = fold(events)
    shuffled = data.draw(st.permutations(events))
    got = fold(shuffled)
    differs = {key: (expected[key], got[key]) for key in expected if expected[key] != got[key]}
    assert not differs, f"{scenario}: {[(e.type.value, e.step) for e in shuffled]}\n{differs}"
