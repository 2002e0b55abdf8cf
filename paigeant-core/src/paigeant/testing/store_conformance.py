"""The workflow store conformance suite: subclass it and define ``make_store(self)``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
import pytest_asyncio

from ..runtime.activity import activity
from ..runtime.context import ActivityContext
from ..runtime.dispatcher import WorkflowDispatcher
from ..runtime.worker import Worker
from ..security.identity import IdentityProvider
from ..store.base import WorkflowStore
from ..store.monitor import Monitor
from ..store.records import STATUSES, WorkflowRecord
from ..transports.inmemory import InMemoryTransport
from ..workflow.events import EventType, WorkflowEvent
from ..workflow.messages import ActivitySpec
from .events import WorkflowEvents

__all__ = ["WorkflowStoreConformance"]

#: Outputs a store must give back exactly: unicode, nesting, nulls, big ints, awkward floats.
ODD_OUTPUTS: list[Any] = [
    'naïve ☃ \U0001f600 \u202e rtl \\ "quoted" \x00 nul',
    {"nested": {"deeper": [1, [2, [3, {"k": None}]]], "empty": {}, "list": []}},
    None,
    2**100,
    -(2**63) - 1,
    [0.1, -0.0, 1e-300, 1.7976931348623157e308, 5e-324, 1.0, 123456789.123456789],
    True,
    "",
]


class _AnyToken(IdentityProvider):
    """Accepts any on-behalf-of token (the suite only checks that tokens are not stored)."""

    name = "any"

    def validate(self, token: str) -> Mapping[str, Any]:
        return {"sub": "suite-user"}


class WorkflowStoreConformance:
    """Every rule of the WorkflowStore contract, as tests. Subclass and define ``make_store``.

    Tests give every workflow (and every activity name) a fresh uuid, so a store shared by
    several tests (a schema per run) works: nothing assumes the store starts empty.
    Optionally define ``stored_text(store)`` returning everything the store persisted as text
    (a file's bytes, a table dump): the suite then checks no token is anywhere in it.
    """

    pytestmark = pytest.mark.asyncio
    #: Seconds a change may take to reach ``watch()``.
    watch_timeout: float = 10.0

    def make_store(self) -> WorkflowStore:
        """Return a new, unconnected store under test."""
        raise NotImplementedError(
            "define make_store(self) in your WorkflowStoreConformance subclass"
        )

    async def stored_text(self, store: WorkflowStore) -> str | None:
        """Everything the store persisted, as text; None when the subclass cannot tell."""
        return None

    @pytest_asyncio.fixture
    async def store(self) -> AsyncIterator[WorkflowStore]:
        """A connected store, closed after the test."""
        store = self.make_store()
        await store.connect()
        try:
            yield store
        finally:
            await store.close()

    @staticmethod
    def name() -> str:
        """A fresh activity name, so filters see only this test's workflows."""
        return f"act-{uuid.uuid4().hex[:10]}"

    @staticmethod
    def lifecycle(outputs: list[Any] | None = None) -> tuple[WorkflowEvents, list[WorkflowEvent]]:
        """Every event of a three-step workflow that retries its second step and completes."""
        w = WorkflowEvents()
        names = ["fetch", "think", "write"]
        outputs = outputs or [{"rows": 3}, "thought", ["done", 1]]
        events = [w.dispatched(names, {"topic": "agents"})]
        events += [w.started(0, "fetch"), w.completed(0, "fetch", outputs[0])]
        events += [w.started(1, "think"), w.retried(1, "think", 1), w.started(1, "think", 2)]
        events += [w.retried(1, "think", 2), w.started(1, "think", 3)]
        events += [w.completed(1, "think", outputs[1], attempt=3)]
        events += [w.started(2, "write"), w.completed(2, "write", outputs[2])]
        events.append(w.finished(EventType.WORKFLOW_COMPLETED, 2, variables={"topic": "done"}))
        return w, events

    # -- connection and basics -------------------------------------------------------------

    async def test_connect_and_close_are_idempotent(self) -> None:
        store = self.make_store()
        await store.connect()
        await store.connect()
        await store.close()
        await store.close()
        async with store as entered:
            assert entered is store

    async def test_an_unknown_workflow_is_none(self, store: WorkflowStore) -> None:
        assert await store.get(str(uuid.uuid4())) is None

    async def test_a_dispatched_workflow_is_running_with_its_itinerary(
        self, store: WorkflowStore
    ) -> None:
        w = WorkflowEvents()
        await store.record(w.dispatched(["a", "b"], {"plan": "pro"}))
        record = await store.get(w.correlation_id)
        assert record is not None
        assert record.status == "running"
        assert [spec.name for spec in record.itinerary] == ["a", "b"]
        assert record.itinerary[1].arguments == {"n": 1}
        assert record.variables == {"plan": "pro"}
        assert record.dispatcher == "tests:1"
        assert record.pending == ["a", "b"]
        assert record.steps == []

    async def test_a_completed_workflow_has_each_step_with_attempts_timing_and_output(
        self, store: WorkflowStore
    ) -> None:
        w, events = self.lifecycle()
        assert await store.record_many(events) == len(events)
        record = await store.get(w.correlation_id)
        assert record is not None
        assert record.status == "completed"
        assert record.variables == {"topic": "done"}
        assert [(s.name, s.status, s.attempts) for s in record.steps] == [
            ("fetch", "completed", 1),
            ("think", "completed", 3),
            ("write", "completed", 1),
        ]
        think = record.steps[1]
        assert think.output == "thought" and think.duration == pytest.approx(0.25)
        assert think.worker == "worker-3"
        assert [(r.attempt, r.error, r.delay) for r in think.retries] == [
            (1, "RuntimeError: boom", 0.25),
            (2, "RuntimeError: boom", 0.5),
        ]
        assert think.started_at is not None and think.finished_at is not None
        assert think.started_at < think.finished_at
        assert record.finished_at is not None and record.error is None
        assert record.events == len(events)
        assert record.pending == []

    # -- idempotency and order -------------------------------------------------------------

    async def test_the_same_event_twice_changes_nothing(self, store: WorkflowStore) -> None:
        w, events = self.lifecycle()
        await store.record_many(events)
        before = await store.get(w.correlation_id)
        assert await store.record_many(events) == 0
        for event in events[:3]:
            await store.record(event)
        assert await store.record_many([events[4], events[4]]) == 0
        after = await store.get(w.correlation_id)
        assert before is not None and after is not None
        assert after.model_dump() == before.model_dump()

    async def test_a_duplicate_inside_one_batch_is_recorded_once(
        self, store: WorkflowStore
    ) -> None:
        w = WorkflowEvents()
        started = w.started(0, "a")
        assert await store.record_many([started, started, started]) == 1
        record = await store.get(w.correlation_id)
        assert record is not None and record.steps[0].started == 1

    async def test_events_in_any_order_give_the_same_record(self, store: WorkflowStore) -> None:
        w, events = self.lifecycle()
        await store.record_many(events)
        expected = await store.get(w.correlation_id)
        assert expected is not None
        for seed in range(4):
            shuffled = [
                e.model_copy(update={"correlation_id": f"{w.correlation_id}-{seed}"})
                for e in events
            ]
            for event in shuffled:
                event.id = f"{event.id}-{seed}"
            random.Random(seed).shuffle(shuffled)
            if seed == 0:
                shuffled.reverse()
            for event in shuffled:  # one at a time: every prefix is a valid state
                await store.record(event)
            got = await store.get(f"{w.correlation_id}-{seed}")
            assert got is not None
            assert _comparable(got) == _comparable(expected), f"order {seed} differs"

    async def test_a_completion_recorded_before_its_dispatch(self, store: WorkflowStore) -> None:
        w = WorkflowEvents()
        dispatched = w.dispatched(["a", "b"], {"v": 1})
        done = [w.completed(0, "a", 1), w.completed(1, "b", 2)]
        final = w.finished(EventType.WORKFLOW_COMPLETED, 1, variables={"v": 2})
        await store.record(final)
        early = await store.get(w.correlation_id)
        assert early is not None and early.status == "completed"
        assert [s.name for s in early.steps] == ["a", "b"]
        await store.record_many([*done, dispatched])
        record = await store.get(w.correlation_id)
        assert record is not None
        assert record.status == "completed"
        assert record.variables == {"v": 2}, "the dispatch's variables replaced the final ones"
        assert [spec.name for spec in record.itinerary] == ["a", "b"]
        assert record.dispatched_at == dispatched.timestamp
        assert record.created_at == dispatched.timestamp
        assert [s.output for s in record.steps] == [1, 2]

    # -- every status --------------------------------------------------------------------------

    async def test_running_then_retrying_then_running_again(self, store: WorkflowStore) -> None:
        w = WorkflowEvents()
        await store.record_many([w.dispatched(["a"]), w.started(0, "a")])
        assert (await _step(store, w, 0)).status == "running"
        await store.record(w.retried(0, "a", 1, "flaky"))
        step = await _step(store, w, 0)
        assert step.status == "retrying" and step.retries[0].error == "RuntimeError: flaky"
        await store.record(w.started(0, "a", 2))
        step = await _step(store, w, 0)
        assert (step.status, step.attempts) == ("running", 2)

    async def test_a_fault_is_compensating_until_the_workflow_faults(
        self, store: WorkflowStore
    ) -> None:
        w = WorkflowEvents()
        events = [w.dispatched(["a", "b", "c"]), w.completed(0, "a", "A"), w.completed(1, "b", "B")]
        events += [w.started(2, "c"), w.faulted(2, "c", error="no disk")]
        await store.record_many(events)
        record = await store.get(w.correlation_id)
        assert record is not None and record.status == "compensating"
        assert record.steps[2].status == "faulted"
        assert record.steps[2].error == "RuntimeError: no disk"
        assert record.fault is not None and record.fault.activity == "c"
        await store.record_many([w.compensated(1, "b", 4), w.compensated(0, "a", 5)])
        record = await store.get(w.correlation_id)
        assert record is not None and record.status == "compensating"
        await store.record(w.finished(EventType.WORKFLOW_FAULTED, 5, compensated=["b", "a"]))
        record = await store.get(w.correlation_id)
        assert record is not None
        assert record.status == "faulted"
        assert record.error == "RuntimeError: no disk"
        assert [(c.name, c.step, c.status) for c in record.compensations] == [
            ("b", 1, "compensated"),
            ("a", 0, "compensated"),
        ]

    async def test_compensation_failed(self, store: WorkflowStore) -> None:
        w = WorkflowEvents()
        events = [w.dispatched(["a", "b"]), w.completed(0, "a"), w.faulted(1, "b")]
        events.append(
            w.finished(
                EventType.WORKFLOW_COMPENSATION_FAILED,
                3,
                error="compensation of 'a' failed: RuntimeError: still broken",
                activity="a",
                step=0,
            )
        )
        await store.record_many(events)
        record = await store.get(w.correlation_id)
        assert record is not None
        assert record.status == "compensation_failed"
        assert record.error == "compensation of 'a' failed: RuntimeError: still broken"
        assert [(c.name, c.status) for c in record.compensations] == [("a", "failed")]
        assert record.compensations[0].error == record.error

    async def test_terminated(self, store: WorkflowStore) -> None:
        w = WorkflowEvents()
        events = [w.dispatched(["a", "b"]), w.completed(0, "a")]
        events.append(w.finished(EventType.WORKFLOW_TERMINATED, 0, reason="nothing to do"))
        await store.record_many(events)
        record = await store.get(w.correlation_id)
        assert record is not None
        assert (record.status, record.reason) == ("terminated", "nothing to do")
        assert record.pending == ["b"]

    async def test_revisions_show_the_itinerary_as_dispatched_and_as_revised(
        self, store: WorkflowStore
    ) -> None:
        w = WorkflowEvents()
        events = [w.dispatched(["plan", "finish"]), w.completed(0, "plan")]
        events += [w.revised(0, "plan", ["extra", "extra"]), w.completed(1, "extra")]
        await store.record_many(events)
        record = await store.get(w.correlation_id)
        assert record is not None
        assert [spec.name for spec in record.itinerary] == ["plan", "finish"]
        assert [spec.name for spec in record.revised_itinerary] == [
            "plan",
            "extra",
            "extra",
            "finish",
        ]
        assert [(r.step, r.after, [s.name for s in r.added]) for r in record.revisions] == [
            (0, "plan", ["extra", "extra"])
        ]
        assert record.pending == ["extra", "finish"]
        assert record.summary().steps_total == 4

    # -- listing -------------------------------------------------------------------------------

    async def test_listing_1000_workflows_newest_first_with_a_cursor(
        self, store: WorkflowStore
    ) -> None:
        tag = self.name()
        cids = await _dispatch_many(store, 1000, tag)
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            page = await store.list(activity=tag, limit=97, cursor=cursor)
            pages += 1
            seen += [item.correlation_id for item in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
            if pages == 3:  # new workflows arriving mid-way appear before page 1, not later
                await _dispatch_many(store, 50, tag)
        assert seen == list(reversed(cids)), "not every workflow exactly once, newest first"
        assert pages == 11
        first = await store.list(activity=tag, limit=10)
        assert len(first.items) == 10 and first.items[0].activities == [tag, "common"]

    async def test_an_unfiltered_list_pages_through_everything(self, store: WorkflowStore) -> None:
        tag = self.name()
        cids = await _dispatch_many(store, 30, tag)
        found: list[str] = []
        cursor = None
        wanted = set(cids)
        while True:
            page = await store.list(limit=7, cursor=cursor)
            found += [item.correlation_id for item in page.items if item.correlation_id in wanted]
            if page.next_cursor is None or len(found) == len(cids):
                break
            cursor = page.next_cursor
        assert found == list(reversed(cids))

    async def test_list_filters_by_status_and_activity(self, store: WorkflowStore) -> None:
        tag = self.name()
        done, failed, running = WorkflowEvents(), WorkflowEvents(), WorkflowEvents()
        events = [w.dispatched([tag, "other"]) for w in (done, failed, running)]
        events += [done.completed(0, tag), done.completed(1, "other")]
        events.append(done.finished(EventType.WORKFLOW_COMPLETED, 1))
        events += [failed.faulted(0, tag), failed.finished(EventType.WORKFLOW_FAULTED, 0)]
        await store.record_many(events)
        ids = {
            status: [
                i.correlation_id for i in (await store.list(status=status, activity=tag)).items
            ]
            for status in ("completed", "faulted", "running", "terminated")
        }
        assert ids == {
            "completed": [done.correlation_id],
            "faulted": [failed.correlation_id],
            "running": [running.correlation_id],
            "terminated": [],
        }
        faulted = (await store.list(status="faulted", activity=tag)).items[0]
        assert faulted.error == "RuntimeError: boom"
        everything = await store.list(activity=tag)
        assert [i.correlation_id for i in everything.items] == [
            running.correlation_id,
            failed.correlation_id,
            done.correlation_id,
        ]
        by_status = await store.list(status="completed", limit=1000)
        assert done.correlation_id in {i.correlation_id for i in by_status.items}
        assert all(i.status == "completed" for i in by_status.items)
        assert (await store.list(activity=self.name())).items == []

    async def test_counts_per_status(self, store: WorkflowStore) -> None:
        tag = self.name()
        first, second = WorkflowEvents(), WorkflowEvents()
        await store.record_many(
            [first.dispatched([tag]), second.dispatched([tag]), second.faulted(0, tag)]
        )
        counts = await store.counts(activity=tag)
        assert counts == {**dict.fromkeys(STATUSES, 0), "running": 1, "compensating": 1}
        overall = await store.counts()
        assert set(overall) == set(STATUSES)
        assert overall["running"] >= 1 and overall["compensating"] >= 1

    async def test_activities_are_listed(self, store: WorkflowStore) -> None:
        tag = self.name()
        await store.record(WorkflowEvents().dispatched([tag, "common"]))
        names = await store.activities()
        assert tag in names and "common" in names
        assert names == sorted(names)

    @pytest.mark.parametrize(
        "query",
        [{"status": "exploded"}, {"limit": 0}, {"limit": 100_000}, {"cursor": "not-a-cursor"}],
    )
    async def test_a_bad_query_is_a_value_error(
        self, store: WorkflowStore, query: dict[str, Any]
    ) -> None:
        with pytest.raises(ValueError):
            await store.list(**query)

    # -- watch ---------------------------------------------------------------------------------

    async def test_watch_sees_changes(self, store: WorkflowStore) -> None:
        w = WorkflowEvents()
        seen: list[WorkflowRecord] = []
        arrived = asyncio.Event()

        async def watch() -> None:
            async for record in store.watch():
                if record.correlation_id == w.correlation_id:
                    seen.append(record)
                    arrived.set()

        watcher = asyncio.ensure_future(watch())
        try:
            attempt = 0
            while not arrived.is_set():  # the watch starts when its first read runs
                attempt += 1
                assert attempt * 0.2 < self.watch_timeout, "watch() never saw a change"
                await store.record(w.started(0, "a", attempt))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(arrived.wait(), 0.2)
            arrived.clear()
            await store.record(w.finished(EventType.WORKFLOW_COMPLETED, 0))
            await asyncio.wait_for(
                _until(lambda: seen[-1].status == "completed", arrived), self.watch_timeout
            )
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        assert seen[0].status == "running" and seen[-1].status == "completed"

    # -- content -------------------------------------------------------------------------------

    async def test_large_and_odd_outputs_round_trip_exactly(self, store: WorkflowStore) -> None:
        large = {"text": "x" * 300_000, "items": list(range(20_000))}
        outputs = [*ODD_OUTPUTS, large]
        w = WorkflowEvents()
        names = [f"s{i}" for i in range(len(outputs))]
        events = [w.dispatched(names, {"odd": ODD_OUTPUTS[0], "big": 2**70})]
        events += [
            w.completed(i, name, output)
            for i, (name, output) in enumerate(zip(names, outputs, strict=True))
        ]
        await store.record_many(events)
        record = await store.get(w.correlation_id)
        assert record is not None
        for step, output in zip(record.steps, outputs, strict=True):
            assert _typed(step.output) == _typed(output), f"output of {step.name} changed"
        assert _typed(record.variables) == _typed({"odd": ODD_OUTPUTS[0], "big": 2**70})
        await store.record(
            w.finished(EventType.WORKFLOW_COMPLETED, len(names), variables={"n": None})
        )
        record = await store.get(w.correlation_id)
        assert record is not None and record.variables == {"n": None}
        assert _typed(record.steps[5].output) == _typed(ODD_OUTPUTS[5])

    async def test_no_obo_token_is_ever_stored(self, store: WorkflowStore) -> None:
        token = f"obo-token-{uuid.uuid4().hex}"
        name = self.name()

        @activity(name)
        async def step(ctx: ActivityContext) -> dict[str, Any]:
            return {"user": ctx.user_claims.get("sub"), "has_token": ctx.has_obo_token}

        async with InMemoryTransport() as transport:
            worker = Worker(transport, [step], identity_provider=_AnyToken(), handle_signals=False)
            monitor = Monitor(transport, store)
            running = [asyncio.ensure_future(worker.run()), asyncio.ensure_future(monitor.run())]
            try:
                dispatcher = WorkflowDispatcher(transport, monitor=True)
                cid = await dispatcher.dispatch_workflow([ActivitySpec(name=name)], obo_token=token)
                result = await dispatcher.wait_for(cid, timeout=10)
                assert result.status == "completed", result.error
                record = await monitor.wait_recorded(cid, timeout=10)
                await dispatcher.close()
            finally:
                worker.stop()
                monitor.stop()
                await asyncio.gather(*running, return_exceptions=True)
        assert record.steps[0].output == {"user": "suite-user", "has_token": True}
        assert token not in record.model_dump_json()
        page = await store.list(activity=name)
        assert token not in page.model_dump_json()
        stored = await self.stored_text(store)
        if stored is not None:
            assert cid in stored, "stored_text() does not show what the store holds"
            assert token not in stored


async def _step(store: WorkflowStore, w: WorkflowEvents, index: int) -> Any:
    record = await store.get(w.correlation_id)
    assert record is not None
    return record.steps[index]


async def _dispatch_many(store: WorkflowStore, n: int, tag: str) -> list[str]:
    """Record ``n`` dispatches (in batches), oldest first; return their correlation ids."""
    events = [WorkflowEvents().dispatched([tag, "common"]) for _ in range(n)]
    for start in range(0, n, 200):
        await store.record_many(events[start : start + 200])
    return [event.correlation_id for event in events]


async def _until(condition: Any, changed: asyncio.Event) -> None:
    while not condition():
        changed.clear()
        await changed.wait()


def _comparable(record: WorkflowRecord) -> dict[str, Any]:
    data = record.model_dump(mode="json")
    data.pop("correlation_id")
    return data


def _typed(value: Any) -> str:
    """JSON with the Python type of every number kept (so 1.0 and 1 differ)."""
    return json.dumps(value, sort_keys=True, default=repr) + repr(_types(value))


def _types(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _types(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_types(item) for item in value]
    return type(value).__name__
