"""What every part of the workflow store conformance suite shares: the factory, fixtures, helpers."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from ..store.base import WorkflowStore
from ..store.records import StepRecord, WorkflowRecord
from ..workflow.events import EventType, WorkflowEvent
from .events import WorkflowEvents

__all__ = ["StoreSuiteBase", "comparable", "dispatch_many", "typed"]


class StoreSuiteBase:
    """The ``make_store`` factory a subclass defines, the ``store`` fixture and shared helpers."""

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

    @staticmethod
    async def step(store: WorkflowStore, w: WorkflowEvents, index: int) -> StepRecord:
        """Step ``index`` of workflow ``w`` as the store holds it."""
        record = await store.get(w.correlation_id)
        assert record is not None
        return record.steps[index]


async def dispatch_many(store: WorkflowStore, n: int, tag: str) -> list[str]:
    """Record ``n`` dispatches (in batches), oldest first; return their correlation ids."""
    events = [WorkflowEvents().dispatched([tag, "common"]) for _ in range(n)]
    for start in range(0, n, 200):
        await store.record_many(events[start : start + 200])
    return [event.correlation_id for event in events]


def comparable(record: WorkflowRecord) -> dict[str, Any]:
    """The record as JSON without its correlation id (to compare two workflows' records)."""
    data = record.model_dump(mode="json")
    data.pop("correlation_id")
    return data


def typed(value: Any) -> str:
    """JSON with the Python type of every number kept (so 1.0 and 1 differ)."""
    return json.dumps(value, sort_keys=True, default=repr) + repr(_types(value))


def _types(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _types(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_types(item) for item in value]
    return type(value).__name__
