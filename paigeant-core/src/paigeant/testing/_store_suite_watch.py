"""Store conformance: watch() yields changed records as they commit."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from ..store.base import WorkflowStore
from ..store.records import WorkflowRecord
from ..workflow.events import EventType
from ._store_suite_base import StoreSuiteBase
from .events import WorkflowEvents

__all__ = ["StoreWatchTests"]


class StoreWatchTests(StoreSuiteBase):
    """watch() sees changes."""

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


async def _until(condition: Any, changed: asyncio.Event) -> None:
    while not condition():
        changed.clear()
        await changed.wait()
