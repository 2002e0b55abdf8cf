"""Store conformance: list (newest first, filters, cursors), counts and activities."""

from __future__ import annotations

from typing import Any

import pytest

from ..store.base import WorkflowStore
from ..store.records import STATUSES
from ..workflow.events import EventType
from ._store_suite_base import StoreSuiteBase, dispatch_many
from .events import WorkflowEvents

__all__ = ["StoreListingTests"]


class StoreListingTests(StoreSuiteBase):
    """list pages newest first with stable cursors; counts and activities."""

    async def test_listing_1000_workflows_newest_first_with_a_cursor(
        self, store: WorkflowStore
    ) -> None:
        tag = self.name()
        cids = await dispatch_many(store, 1000, tag)
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
                await dispatch_many(store, 50, tag)
        assert seen == list(reversed(cids)), "not every workflow exactly once, newest first"
        assert pages == 11
        first = await store.list(activity=tag, limit=10)
        assert len(first.items) == 10 and first.items[0].activities == [tag, "common"]

    async def test_an_unfiltered_list_pages_through_everything(self, store: WorkflowStore) -> None:
        tag = self.name()
        cids = await dispatch_many(store, 30, tag)
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
