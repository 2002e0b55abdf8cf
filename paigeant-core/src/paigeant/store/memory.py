"""The ``memory`` workflow store: records in this process only, for tests and short-lived tools."""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncIterator, Sequence

from ..workflow.events import WorkflowEvent
from .base import WorkflowPage, WorkflowStore
from .records import STATUSES, WorkflowRecord

__all__ = ["MemoryWorkflowStore"]


class MemoryWorkflowStore(WorkflowStore):
    """A WorkflowStore in a dict: complete semantics, nothing survives the process."""

    name = "memory"

    def __init__(self) -> None:
        """Create an empty store."""
        self._records: dict[str, WorkflowRecord] = {}
        self._order: dict[str, int] = {}
        self._seen: set[str] = set()
        self._watchers: set[asyncio.Queue[WorkflowRecord]] = set()

    def describe(self) -> str:
        """``the in-process memory workflow store``."""
        return "the in-process memory workflow store"

    async def connect(self) -> None:
        """Nothing to open."""

    async def close(self) -> None:
        """Nothing to close; the records stay until the store is dropped."""

    async def record_many(self, events: Sequence[WorkflowEvent]) -> int:
        """Apply each event not seen before; watchers see every changed record."""
        changed: dict[str, WorkflowRecord] = {}
        new = 0
        for event in events:
            key = self.event_key(event)
            if key in self._seen:
                continue
            self._seen.add(key)
            new += 1
            record = self._records.get(event.correlation_id)
            if record is None:
                record = self._records[event.correlation_id] = WorkflowRecord.from_event(event)
                self._order[event.correlation_id] = len(self._order) + 1
            else:
                record.apply(event)
            changed[record.correlation_id] = record
        for record in changed.values():
            for watcher in self._watchers:
                watcher.put_nowait(record.model_copy(deep=True))
        return new

    async def get(self, correlation_id: str) -> WorkflowRecord | None:
        """A copy of the record, or None."""
        record = self._records.get(correlation_id)
        return None if record is None else record.model_copy(deep=True)

    async def list(
        self,
        *,
        status: str | None = None,
        activity: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> WorkflowPage:
        """Newest first, filtered, from ``cursor`` on."""
        self.check_query(status, limit)
        before = self.decode_cursor(cursor) if cursor else None
        matching = [
            (position, cid)
            for cid, position in self._order.items()
            if (before is None or position < before) and self._matches(cid, status, activity)
        ]
        matching.sort(reverse=True)
        page = matching[:limit]
        more = len(matching) > limit
        return WorkflowPage(
            items=[self._records[cid].summary() for _, cid in page],
            next_cursor=self.encode_cursor(page[-1][0]) if more else None,
        )

    def _matches(self, cid: str, status: str | None, activity: str | None) -> bool:
        record = self._records[cid]
        if status is not None and record.status != status:
            return False
        return activity is None or activity in record.activities

    async def counts(self, *, activity: str | None = None) -> dict[str, int]:
        """Workflows per status."""
        counts: dict[str, int] = dict.fromkeys(STATUSES, 0)
        for cid, record in self._records.items():
            if self._matches(cid, None, activity):
                counts[record.status] += 1
        return counts

    async def activities(self) -> builtins.list[str]:
        """Every activity name recorded."""
        return sorted({name for record in self._records.values() for name in record.activities})

    async def watch(self) -> AsyncIterator[WorkflowRecord]:
        """Yield each changed record from now on."""
        queue: asyncio.Queue[WorkflowRecord] = asyncio.Queue()
        self._watchers.add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._watchers.discard(queue)
