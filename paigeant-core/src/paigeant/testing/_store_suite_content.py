"""Store conformance: outputs that are large or odd JSON come back exactly; no token is stored."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Mapping
from typing import Any

from ..runtime.activity import activity
from ..runtime.context import ActivityContext
from ..runtime.dispatcher import WorkflowDispatcher
from ..runtime.worker import Worker
from ..security.identity import IdentityProvider
from ..store.base import WorkflowStore
from ..store.monitor import Monitor
from ..transports.inmemory import InMemoryTransport
from ..workflow.events import EventType
from ..workflow.messages import ActivitySpec
from ._store_suite_base import StoreSuiteBase, typed
from .events import WorkflowEvents

__all__ = ["StoreContentTests"]

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


class StoreContentTests(StoreSuiteBase):
    """What is stored comes back exactly, and never an on-behalf-of token."""

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
            assert typed(step.output) == typed(output), f"output of {step.name} changed"
        assert typed(record.variables) == typed({"odd": ODD_OUTPUTS[0], "big": 2**70})
        await store.record(
            w.finished(EventType.WORKFLOW_COMPLETED, len(names), variables={"n": None})
        )
        record = await store.get(w.correlation_id)
        assert record is not None and record.variables == {"n": None}
        assert typed(record.steps[5].output) == typed(ODD_OUTPUTS[5])

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
        assert record.trace_id is not None and re.fullmatch("[0-9a-f]{32}", record.trace_id)
        by_trace = await store.get_by_trace(record.trace_id)
        assert by_trace is not None and by_trace.correlation_id == cid
        assert token not in record.model_dump_json()
        page = await store.list(activity=name)
        assert token not in page.model_dump_json()
        stored = await self.stored_text(store)
        if stored is not None:
            assert cid in stored, "stored_text() does not show what the store holds"
            assert token not in stored
