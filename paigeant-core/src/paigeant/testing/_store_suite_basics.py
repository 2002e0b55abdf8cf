"""Store conformance: connecting, unknown workflows, a dispatch, a whole completed workflow."""

from __future__ import annotations

import uuid

import pytest

from ..store.base import WorkflowStore
from ._store_suite_base import StoreSuiteBase
from .events import WorkflowEvents

__all__ = ["StoreBasicsTests"]


class StoreBasicsTests(StoreSuiteBase):
    """connect/close are idempotent; get() gives the record of what was recorded."""

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

    async def test_a_workflow_is_found_by_its_trace_id(self, store: WorkflowStore) -> None:
        w, events = self.lifecycle()
        await store.record_many(events)
        record = await store.get_by_trace(w.trace_id)
        assert record is not None
        assert (record.correlation_id, record.trace_id) == (w.correlation_id, w.trace_id)
        assert await store.get_by_trace(uuid.uuid4().hex) is None

    async def test_the_dispatch_trace_id_wins_in_any_order(self, store: WorkflowStore) -> None:
        for first_dispatch in (True, False):
            w = WorkflowEvents()
            dispatched = w.dispatched(["a", "b"])
            stray = w.completed(0, "a").model_copy(update={"trace_id": "0" * 31 + "1"})
            for event in [dispatched, stray] if first_dispatch else [stray, dispatched]:
                await store.record(event)
            record = await store.get(w.correlation_id)
            assert record is not None and record.trace_id == w.trace_id, first_dispatch
            found = await store.get_by_trace(w.trace_id)
            assert found is not None and found.correlation_id == w.correlation_id
