"""Store conformance: each event applied once, in any order, and a batch all or nothing."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from ..store.base import WorkflowStore
from ..store.records import WorkflowRecord
from ..workflow.events import EventType, WorkflowEvent
from ._store_suite_base import StoreSuiteBase, comparable
from .events import WorkflowEvents

__all__ = ["StoreOrderTests"]


class StoreOrderTests(StoreSuiteBase):
    """record is idempotent and order-tolerant; a batch is recorded all or nothing."""

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

    async def test_naive_and_aware_timestamps_mixed_give_the_same_record(
        self, store: WorkflowStore
    ) -> None:
        # a sender that writes times without a UTC offset: they are taken as UTC
        w, events = self.lifecycle()
        await store.record_many(events)
        expected = await store.get(w.correlation_id)
        assert expected is not None
        for batched in (False, True):
            cid = f"{w.correlation_id}-{'batch' if batched else 'one-by-one'}"
            mixed = [
                _as_sent(event, cid, naive=i % 2 == 1) for i, event in enumerate(reversed(events))
            ]
            assert any(e.timestamp.tzinfo is not None for e in mixed)
            if batched:
                assert await store.record_many(mixed) == len(mixed)
            else:
                for event in mixed:
                    await store.record(event)
            got = await store.get(cid)
            assert got is not None, "the mixed events were not recorded"
            assert comparable(got) == comparable(expected)

    async def test_a_batch_that_fails_records_nothing_and_all_of_it_when_retried(
        self, store: WorkflowStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        first, second = WorkflowEvents(), WorkflowEvents()
        await store.record(first.dispatched(["a", "b"]))
        before = await store.get(first.correlation_id)
        poison = first.completed(0, "a", "A")
        batch = [first.started(0, "a"), second.dispatched(["c"]), poison, first.started(1, "b")]
        apply = WorkflowRecord.apply

        def failing_apply(record: WorkflowRecord, event: WorkflowEvent) -> None:
            if event.id == poison.id:
                raise RuntimeError("the fold failed (injected by the conformance suite)")
            apply(record, event)

        monkeypatch.setattr(WorkflowRecord, "apply", failing_apply)
        with pytest.raises(RuntimeError, match="injected by the conformance suite"):
            await store.record_many(batch)
        monkeypatch.setattr(WorkflowRecord, "apply", apply)
        after = await store.get(first.correlation_id)
        assert before is not None and after is not None
        assert after.model_dump() == before.model_dump(), "part of a failed batch was recorded"
        assert await store.get(second.correlation_id) is None, "part of a failed batch was recorded"
        assert await store.record_many(batch) == len(batch), "events of a failed batch were lost"
        record = await store.get(first.correlation_id)
        assert record is not None and record.events == 1 + 3
        assert [(s.name, s.status) for s in record.steps] == [("a", "completed"), ("b", "running")]
        assert await store.get(second.correlation_id) is not None


def _as_sent(event: WorkflowEvent, correlation_id: str, *, naive: bool) -> WorkflowEvent:
    """``event`` for workflow ``correlation_id`` as a monitor parses it, its time naive or not."""
    data: dict[str, Any] = event.model_dump(mode="json", exclude_none=True)
    data["correlation_id"] = correlation_id
    data["id"] = f"{event.id}-{correlation_id}"
    if naive:
        data["timestamp"] = event.timestamp.replace(tzinfo=None).isoformat()
        for entry in data.get("activity_log", []):
            for key in ("started_at", "finished_at"):
                entry[key] = entry[key].replace("Z", "").replace("+00:00", "")
    return WorkflowEvent.model_validate_json(json.dumps(data))
