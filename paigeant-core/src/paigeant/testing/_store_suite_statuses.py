"""Store conformance: every workflow and step status, compensation, termination, revisions."""

from __future__ import annotations

from ..store.base import WorkflowStore
from ..workflow.events import EventType
from ._store_suite_base import StoreSuiteBase
from .events import WorkflowEvents

__all__ = ["StoreStatusTests"]


class StoreStatusTests(StoreSuiteBase):
    """Each status transition, including compensation, and itinerary revisions."""

    async def test_running_then_retrying_then_running_again(self, store: WorkflowStore) -> None:
        w = WorkflowEvents()
        await store.record_many([w.dispatched(["a"]), w.started(0, "a")])
        assert (await self.step(store, w, 0)).status == "running"
        await store.record(w.retried(0, "a", 1, "flaky"))
        step = await self.step(store, w, 0)
        assert step.status == "retrying" and step.retries[0].error == "RuntimeError: flaky"
        await store.record(w.started(0, "a", 2))
        step = await self.step(store, w, 0)
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
