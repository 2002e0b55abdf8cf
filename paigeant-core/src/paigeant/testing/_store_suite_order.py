"""Store conformance: each event applied once, in any order, and a batch all or nothing."""

from __future__ import annotations

import random

from ..store.base import WorkflowStore
from ..workflow.events import EventType
from ._store_suite_base import StoreSuiteBase, comparable
from .events import WorkflowEvents

__all__ = ["StoreOrderTests"]


class StoreOrderTests(StoreSuiteBase):
    """record is idempotent and order-tolerant."""

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
            assert comparable(got) == comparable(expected), f"order {seed} differs"

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
