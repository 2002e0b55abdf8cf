"""Store conformance: ``counts()`` stays equal to a recount of the rows, overall and per activity."""

from __future__ import annotations

from collections import Counter

from ..store.base import MAX_LIST_LIMIT, WorkflowStore
from ..store.records import STATUSES, WorkflowRecord
from ..workflow.events import EventType, WorkflowEvent
from ._store_suite_base import StoreSuiteBase
from .events import WorkflowEvents

__all__ = ["StoreCountsTests", "records_in_every_status", "recount"]

#: The statuses ``records_in_every_status`` makes, 8 workflows each.
_COMMON_STATUSES = ("running", "completed", "compensating", "faulted", "terminated")


async def recount(store: WorkflowStore, activity: str | None = None) -> dict[str, int]:
    """Workflows per status, counted one by one through every ``list`` page (every status)."""
    counts: Counter[str] = Counter(dict.fromkeys(STATUSES, 0))
    cursor: str | None = None
    while True:
        page = await store.list(activity=activity, limit=MAX_LIST_LIMIT, cursor=cursor)
        counts.update(item.status for item in page.items)
        if page.next_cursor is None:
            return dict(counts)
        cursor = page.next_cursor


def records_in_every_status() -> list[WorkflowRecord]:
    """40 workflow records, 8 in each common status, over activities a, b, c (for migrations).

    A migration test writes them as an older schema would have, then checks what the new
    schema makes of them; the statuses are running, completed, compensating, faulted and
    terminated.
    """
    records = []
    for i in range(40):
        w = WorkflowEvents()
        names = ["a", "b"] if i % 2 else ["b", "c"]
        events = [w.dispatched(names)]
        kind = _COMMON_STATUSES[i % len(_COMMON_STATUSES)]
        if kind == "completed":
            events.append(w.finished(EventType.WORKFLOW_COMPLETED, 1))
        elif kind == "compensating":
            events.append(w.faulted(0, names[0]))
        elif kind == "faulted":
            events += [w.faulted(0, names[0]), w.finished(EventType.WORKFLOW_FAULTED, 0)]
        elif kind == "terminated":
            events.append(w.finished(EventType.WORKFLOW_TERMINATED, 0, reason="stop"))
        record = WorkflowRecord.from_event(events[0])
        for event in events[1:]:
            record.apply(event)
        assert record.status == kind, (record.status, kind)
        records.append(record)
    return records


class StoreCountsTests(StoreSuiteBase):
    """``counts()`` after every kind of change: new workflows, status changes, new activities."""

    async def assert_counts_exact(self, store: WorkflowStore, activities: list[str]) -> None:
        """``counts()``, overall and for each of ``activities``, equals a recount through list."""
        assert await store.counts() == await recount(store)
        for name in activities:
            assert await store.counts(activity=name) == await recount(store, name), name

    async def test_counts_follow_a_mixed_series_of_events(self, store: WorkflowStore) -> None:
        a, b, c, d = (self.name() for _ in range(4))
        names = [a, b, c, d]
        before = await store.counts()
        running, done, failing, growing, late = (WorkflowEvents() for _ in range(5))
        batches: list[list[WorkflowEvent]] = [
            # new workflows, one completing within the batch it was created in
            [running.dispatched([a, b]), running.started(0, a)],
            [done.dispatched([a, c]), done.completed(0, a), done.completed(1, c)],
            [done.finished(EventType.WORKFLOW_COMPLETED, 1), failing.dispatched([b, c])],
            [failing.started(0, b), failing.faulted(0, b, error="no disk")],  # compensating
            # a running workflow gains activity d, then completes
            [growing.dispatched([a]), growing.completed(0, a)],
            [growing.revised(0, a, [d]), growing.started(1, d)],
            # the end of a workflow recorded before its start
            [late.finished(EventType.WORKFLOW_TERMINATED, 0, reason="late"), running.started(1, b)],
            [late.dispatched([c, d])],
        ]
        for batch in batches:
            await store.record_many(batch)
            await self.assert_counts_exact(store, names)
        # redelivered events change nothing, alone or beside new ones (and duplicated in a batch)
        assert await store.record_many(batches[1] + batches[2]) == 0
        snapshot = await store.counts()
        assert snapshot == await recount(store)
        events = [growing.completed(1, d), growing.completed(1, d), *batches[5]]
        events.append(growing.finished(EventType.WORKFLOW_COMPLETED, 1))
        assert await store.record_many(events) == 2
        events = [failing.finished(EventType.WORKFLOW_FAULTED, 0), *batches[3]]
        assert await store.record_many(events) == 1
        await self.assert_counts_exact(store, names)
        after = await store.counts()
        changed = {s: after[s] - before[s] for s in STATUSES if after[s] != before[s]}
        assert changed == {"running": 1, "completed": 2, "faulted": 1, "terminated": 1}
        expected = {
            a: {"running": 1, "completed": 2},
            b: {"running": 1, "faulted": 1},
            c: {"completed": 1, "faulted": 1, "terminated": 1},
            d: {"completed": 1, "terminated": 1},
        }
        for name, statuses in expected.items():
            assert await store.counts(activity=name) == {s: statuses.get(s, 0) for s in STATUSES}, (
                name
            )

    async def test_counts_of_many_workflows_in_one_batch(self, store: WorkflowStore) -> None:
        tag = self.name()
        flows = [WorkflowEvents() for _ in range(30)]
        events = [w.dispatched([tag, "common"]) for w in flows]
        events += [w.finished(EventType.WORKFLOW_COMPLETED, 1) for w in flows[::3]]
        events += [w.faulted(0, tag) for w in flows[1::3]]
        await store.record_many(events)
        await store.record_many([w.finished(EventType.WORKFLOW_FAULTED, 0) for w in flows[1::6]])
        await self.assert_counts_exact(store, [tag, "common"])
        counts = await store.counts(activity=tag)
        assert (counts["completed"], counts["compensating"], counts["faulted"]) == (10, 5, 5)
        assert counts["running"] == 10 and sum(counts.values()) == 30

    async def test_counts_of_an_unknown_activity_are_zeros(self, store: WorkflowStore) -> None:
        assert await store.counts(activity=self.name()) == dict.fromkeys(STATUSES, 0)
