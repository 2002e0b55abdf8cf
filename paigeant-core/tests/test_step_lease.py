"""A step whose lease is lost while it runs: the heartbeat logs it once and the step carries on."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import pytest

from paigeant import (
    ActivityContext,
    ActivitySpec,
    LeaseLostError,
    WorkflowDispatcher,
    WorkflowResult,
    activity,
    activity_queue,
)
from paigeant.runtime.signer_choice import resolve_signer
from paigeant.runtime.step import StepRunner
from paigeant.testing import Receiver
from paigeant.transports.inmemory import InMemoryTransport
from paigeant.workflow.wire import Wire

finished: list[int] = []


@activity("lease-slow")
async def slow(ctx: ActivityContext) -> str:
    await asyncio.sleep(0.4)  # several heartbeats long
    finished.append(ctx.attempt)
    return "done"


async def run_step(extend: Callable[[], Awaitable[None]]) -> tuple[str, WorkflowResult]:
    """Run one ``lease-slow`` step whose delivery's ``extend`` is ``extend``; heartbeat 50 ms."""
    finished.clear()
    async with InMemoryTransport(visibility_timeout=30.0) as transport:
        dispatcher = WorkflowDispatcher(transport)
        cid = await dispatcher.dispatch_workflow([ActivitySpec(name="lease-slow")])
        async with Receiver(transport, activity_queue("lease-slow")) as receiver:
            delivery = await receiver.get()
            assert delivery is not None
            delivery.extend = extend  # type: ignore[method-assign]
            transport.visibility_timeout = 0.15  # the runner beats every 50 ms
            runner = StepRunner(
                transport, {"lease-slow": slow}, Wire(resolve_signer(transport)), worker_id="w"
            )
            await runner.handle(delivery, activity_queue("lease-slow"))
        return cid, await dispatcher.wait_for(cid, timeout=5)


async def test_lost_lease_is_logged_with_the_correlation_id_and_the_step_finishes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    extends = 0

    async def lost() -> None:
        nonlocal extends
        extends += 1
        raise LeaseLostError("the lease ran out (test)")

    caplog.set_level(logging.WARNING, logger="paigeant.transports.leases")
    cid, result = await run_step(lost)
    assert result.status == "completed" and finished == [1], "the step did not carry on"
    assert extends == 1, f"the heartbeat kept extending a lost lease ({extends} calls)"
    warnings = [r for r in caplog.records if "lease" in r.getMessage()]
    assert len(warnings) == 1
    assert cid in warnings[0].getMessage()
    assert getattr(warnings[0], "correlation_id", None) == cid
    assert "carries on" in warnings[0].getMessage()


async def test_a_heartbeat_that_fails_otherwise_keeps_beating() -> None:
    calls = 0

    async def flaky() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionError("broker briefly unreachable")

    _, result = await run_step(flaky)
    assert result.status == "completed"
    assert calls >= 3, "a transient heartbeat failure stopped the heartbeat"
