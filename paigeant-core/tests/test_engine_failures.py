"""Failure semantics: retries, timeouts, faults with compensation, crashes, bad messages, drain."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import signal
import time
from typing import Any

import pytest

from paigeant import (
    ActivityContext,
    ActivitySpec,
    NonRetryableError,
    RetryPolicy,
    Worker,
    WorkflowDispatcher,
    activity,
    activity_queue,
    dead_letter_queue,
)
from paigeant.testing import Receiver
from paigeant.transports.base import DEAD_LETTER_REASON_HEADER
from paigeant.transports.inmemory import InMemoryTransport, _InMemoryDelivery

FAST = RetryPolicy(max_attempts=3, initial_delay=0.05, backoff=2.0, jitter=0.0)


def flaky(name: str, failures: int, attempts: list[tuple[int, float]], **kwargs: Any) -> Any:
    @activity(name, **kwargs)
    async def run(ctx: ActivityContext) -> str:
        attempts.append((ctx.attempt, time.monotonic()))
        if len(attempts) <= failures:
            raise RuntimeError(f"boom {len(attempts)}")
        return "ok"

    return run


async def test_retries_with_backoff_then_success(
    transport: InMemoryTransport, start_worker: Any
) -> None:
    attempts: list[tuple[int, float]] = []
    start_worker(Worker(transport, [flaky("flaky", 2, attempts, retry=FAST)]))
    dispatcher = WorkflowDispatcher(transport)
    result = await dispatcher.wait_for(
        await dispatcher.dispatch_workflow([ActivitySpec(name="flaky")]), timeout=10
    )
    assert result.status == "completed"
    assert [a for a, _ in attempts] == [1, 2, 3]
    assert result.activity_log[0].attempt == 3
    gaps = [b - a for (_, a), (_, b) in itertools.pairwise(attempts)]
    assert gaps[0] >= 0.045 and gaps[1] >= 0.095, f"backoff not applied: {gaps}"


async def test_exact_attempts_then_fault(transport: InMemoryTransport, start_worker: Any) -> None:
    attempts: list[tuple[int, float]] = []
    start_worker(Worker(transport, [flaky("always-fails", 99, attempts, retry=FAST)]))
    dispatcher = WorkflowDispatcher(transport)
    cid = await dispatcher.dispatch_workflow([ActivitySpec(name="always-fails")])
    result = await dispatcher.wait_for(cid, timeout=10)
    assert result.status == "faulted"
    assert [a for a, _ in attempts] == [1, 2, 3]
    assert result.fault is not None and result.fault.attempt == 3
    assert result.error == "RuntimeError: boom 3"


async def test_spec_retry_overrides_activity_retry(
    transport: InMemoryTransport, start_worker: Any
) -> None:
    attempts: list[tuple[int, float]] = []
    start_worker(Worker(transport, [flaky("f", 99, attempts, retry=FAST)]))
    dispatcher = WorkflowDispatcher(transport)
    spec = ActivitySpec(name="f", retry=RetryPolicy(max_attempts=5, initial_delay=0.01, jitter=0))
    result = await dispatcher.wait_for(await dispatcher.dispatch_workflow([spec]), timeout=10)
    assert result.status == "faulted" and len(attempts) == 5


async def test_non_retryable_error_skips_retries(
    transport: InMemoryTransport, start_worker: Any
) -> None:
    calls: list[int] = []

    @activity("strict", retry=FAST)
    async def strict(ctx: ActivityContext) -> None:
        calls.append(ctx.attempt)
        raise NonRetryableError("bad input")

    start_worker(Worker(transport, [strict]))
    dispatcher = WorkflowDispatcher(transport)
    result = await dispatcher.wait_for(
        await dispatcher.dispatch_workflow([ActivitySpec(name="strict")]), timeout=10
    )
    assert result.status == "faulted" and calls == [1]
    assert result.error == "NonRetryableError: bad input"


async def test_timeout_is_a_failed_attempt(transport: InMemoryTransport, start_worker: Any) -> None:
    calls: list[int] = []

    @activity("sleepy", timeout=0.1, retry=RetryPolicy(max_attempts=2, initial_delay=0.01))
    async def sleepy(ctx: ActivityContext) -> None:
        calls.append(ctx.attempt)
        await asyncio.sleep(5)

    start_worker(Worker(transport, [sleepy]))
    dispatcher = WorkflowDispatcher(transport)
    result = await dispatcher.wait_for(
        await dispatcher.dispatch_workflow([ActivitySpec(name="sleepy")]), timeout=10
    )
    assert calls == [1, 2]
    assert result.status == "faulted"
    assert result.error == "ActivityTimeoutError: activity 'sleepy' timed out after 0.1s"


def _compensable(name: str, journal: list[str], *, fail_compensation: bool = False) -> Any:
    @activity(name, retry=RetryPolicy(max_attempts=1))
    async def run(ctx: ActivityContext) -> dict[str, str]:
        journal.append(f"run {name}")
        return {"made": name}

    @run.compensate
    async def undo(ctx: ActivityContext) -> None:
        journal.append(f"undo {name} {ctx.output['made']} on {ctx.worker}")
        if fail_compensation:
            raise RuntimeError(f"cannot undo {name}")

    return run


async def test_fault_compensates_in_reverse_order_each_on_its_own_queue(
    transport: InMemoryTransport, start_worker: Any
) -> None:
    journal: list[str] = []
    first, third = _compensable("first", journal), _compensable("third", journal)

    @activity("second")
    async def second(ctx: ActivityContext) -> str:
        journal.append("run second")
        return "no compensation"

    @activity("fourth", retry=RetryPolicy(max_attempts=1))
    async def fourth(ctx: ActivityContext) -> None:
        raise ValueError("card declined")

    start_worker(Worker(transport, [first], name="worker-first"))
    start_worker(Worker(transport, [second, third, fourth], name="worker-rest"))
    dispatcher = WorkflowDispatcher(transport)
    cid = await dispatcher.dispatch_workflow(
        [ActivitySpec(name=n) for n in ("first", "second", "third", "fourth")]
    )
    result = await dispatcher.wait_for(cid, timeout=10)
    assert result.status == "faulted"
    assert result.error == "ValueError: card declined"
    assert result.fault is not None and result.fault.activity == "fourth"
    assert result.compensated == ["third", "first"]
    assert journal == [
        "run first",
        "run second",
        "run third",
        "undo third third on worker-rest",
        "undo first first on worker-first",
    ]


async def test_failing_compensation_is_reported(
    transport: InMemoryTransport, start_worker: Any
) -> None:
    journal: list[str] = []

    @activity("explode", retry=RetryPolicy(max_attempts=1))
    async def explode(ctx: ActivityContext) -> None:
        raise RuntimeError("explode")

    start_worker(
        Worker(transport, [_compensable("stubborn", journal, fail_compensation=True), explode])
    )
    dispatcher = WorkflowDispatcher(transport)
    cid = await dispatcher.dispatch_workflow(
        [ActivitySpec(name="stubborn"), ActivitySpec(name="explode")]
    )
    result = await dispatcher.wait_for(cid, timeout=10)
    assert result.status == "compensation_failed"
    assert result.error == "compensation of 'stubborn' failed: RuntimeError: cannot undo stubborn"
    assert result.fault is not None and result.fault.activity == "explode"


async def test_worker_crash_mid_step_loses_nothing(
    transport: InMemoryTransport, start_worker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[int, str]] = []
    first_attempt_started = asyncio.Event()

    @activity("fragile")
    async def fragile(ctx: ActivityContext) -> str:
        seen.append((ctx.attempt, ctx.idempotency_key))
        if ctx.attempt == 1:
            first_attempt_started.set()
            await asyncio.sleep(30)  # the worker dies during this
        return "survived"

    @activity("after")
    async def after(ctx: ActivityContext) -> Any:
        return ctx.previous_output

    async def crash(delivery: Any, delay: float = 0.0) -> None:
        return None  # a dead process settles nothing

    monkeypatch.setattr("paigeant.runtime.worker._give_back", crash)
    crashing = Worker(transport, [fragile, after], drain_timeout=0)
    task = start_worker(crashing)
    dispatcher = WorkflowDispatcher(transport)
    cid = await dispatcher.dispatch_workflow(
        [ActivitySpec(name="fragile"), ActivitySpec(name="after")]
    )
    await asyncio.wait_for(first_attempt_started.wait(), 5)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    start_worker(Worker(transport, [fragile, after]))
    result = await dispatcher.wait_for(cid, timeout=10)
    assert result.status == "completed" and result.output == "survived"
    assert [a for a, _ in seen] == [1, 2]
    assert seen[0][1] == seen[1][1], "idempotency key changed across redelivery"


async def test_reforward_after_crash_reuses_message_id(
    transport: InMemoryTransport, start_worker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    forwarded: list[str] = []
    original_ack = _InMemoryDelivery.ack
    crashed = False

    async def ack_then_crash(self: _InMemoryDelivery, *, forward: Any = ()) -> None:
        nonlocal crashed
        for out in forward:
            if out.queue == activity_queue("second-step"):
                forwarded.append(out.message_id)
        if forward and not crashed and self.queue == activity_queue("first-step"):
            crashed = True
            for out in forward:  # the forward reached the broker, then the process died
                await self._transport.publish(
                    out.queue, out.body, message_id=out.message_id, headers=out.headers
                )
            raise RuntimeError("process died before ack")
        await original_ack(self, forward=forward)

    monkeypatch.setattr(_InMemoryDelivery, "ack", ack_then_crash)

    @activity("first-step")
    async def first_step(ctx: ActivityContext) -> str:
        return "one"

    @activity("second-step")
    async def second_step(ctx: ActivityContext) -> str:
        return "two"

    start_worker(Worker(transport, [first_step, second_step]))
    dispatcher = WorkflowDispatcher(transport)
    cid = await dispatcher.dispatch_workflow(
        [ActivitySpec(name="first-step"), ActivitySpec(name="second-step")]
    )
    result = await dispatcher.wait_for(cid, timeout=10)
    assert result.status == "completed"
    for _ in range(300):  # the crashed step is redelivered after the worker's 1s back-off
        if len(forwarded) == 2:
            break
        await asyncio.sleep(0.01)
    assert len(forwarded) == 2 and forwarded[0] == forwarded[1] == f"{cid}.1"


async def test_heartbeats_keep_long_steps_from_redelivery(start_worker: Any) -> None:
    async with InMemoryTransport(visibility_timeout=0.2) as transport:
        runs: list[int] = []

        @activity("long")
        async def long(ctx: ActivityContext) -> str:
            runs.append(ctx.attempt)
            await asyncio.sleep(1.0)  # five leases long
            return "done"

        start_worker(Worker(transport, [long]))
        dispatcher = WorkflowDispatcher(transport)
        result = await dispatcher.wait_for(
            await dispatcher.dispatch_workflow([ActivitySpec(name="long")]), timeout=10
        )
        assert result.status == "completed" and runs == [1]


@pytest.mark.parametrize(
    ("body", "reason_start"),
    [
        (b"{not json", "invalid signature"),
        (b"x" * (1024 * 1024 + 1), "message too large"),
    ],
)
async def test_garbage_is_dead_lettered_and_worker_goes_on(
    transport: InMemoryTransport, start_worker: Any, body: bytes, reason_start: str
) -> None:
    ok = _ok_activity()
    start_worker(Worker(transport, [ok]))
    await transport.publish(activity_queue("ok"), body, message_id="garbage")
    async with Receiver(transport, dead_letter_queue(activity_queue("ok"))) as dead:
        parked = await dead.get(timeout=5)
        assert parked is not None and parked.message_id == "garbage"
        assert parked.headers[DEAD_LETTER_REASON_HEADER].startswith(reason_start)
        await parked.ack()
    await _assert_still_works(transport)


async def test_malformed_but_signed_message_is_dead_lettered(
    transport: InMemoryTransport, start_worker: Any
) -> None:
    from paigeant.runtime.signer_choice import resolve_signer
    from paigeant.workflow.wire import Wire

    wire = Wire(resolve_signer(transport))
    start_worker(Worker(transport, [_ok_activity()]))
    bad = wire.seal(
        activity_queue("ok"),
        b'{"hello": "world"}',
        message_id="m",
        correlation_id="c-9",
        traceparent=None,
    )
    await transport.publish(bad.queue, bad.body, message_id=bad.message_id, headers=bad.headers)
    async with Receiver(transport, dead_letter_queue(activity_queue("ok"))) as dead:
        parked = await dead.get(timeout=5)
        assert parked is not None
        assert parked.headers[DEAD_LETTER_REASON_HEADER].startswith("malformed message")
        await parked.ack()
    await _assert_still_works(transport)


async def test_unknown_activity_is_dead_lettered_with_correlation_id_logged(
    transport: InMemoryTransport, start_worker: Any, caplog: pytest.LogCaptureFixture
) -> None:
    start_worker(Worker(transport, [_ok_activity()]))
    dispatcher = WorkflowDispatcher(transport)
    # a step for "ghost" lands on ok's queue (a misrouted message)
    cid = await dispatcher.dispatch_workflow([ActivitySpec(name="ghost")])
    queue = activity_queue("ghost")
    async with Receiver(transport, queue) as stray:
        delivery = await stray.get(timeout=2)
        assert delivery is not None
        await transport.publish(
            activity_queue("ok"),
            delivery.body,
            message_id=delivery.message_id,
            headers=delivery.headers,
        )
        await delivery.ack()
    with caplog.at_level(logging.ERROR, logger="paigeant.runtime.step"):
        async with Receiver(transport, dead_letter_queue(activity_queue("ok"))) as dead:
            parked = await dead.get(timeout=5)
            assert parked is not None
            assert (
                parked.headers[DEAD_LETTER_REASON_HEADER]
                == "unknown activity 'ghost' (this worker hosts: ok)"
            )
            await parked.ack()
    assert any(cid in r.getMessage() for r in caplog.records)
    await _assert_still_works(transport)


async def test_stop_drains_in_flight_steps(transport: InMemoryTransport) -> None:
    started = asyncio.Event()

    @activity("slow")
    async def slow(ctx: ActivityContext) -> str:
        started.set()
        await asyncio.sleep(0.3)
        return "finished"

    worker = Worker(transport, [slow])
    task = asyncio.ensure_future(worker.run())
    dispatcher = WorkflowDispatcher(transport)
    cid = await dispatcher.dispatch_workflow([ActivitySpec(name="slow")])
    await asyncio.wait_for(started.wait(), 5)
    os.kill(os.getpid(), signal.SIGTERM)  # handled by the worker: drain, then return
    await asyncio.wait_for(task, 5)
    result = await dispatcher.wait_for(cid, timeout=1)
    assert result.status == "completed" and result.output == "finished"


async def test_unfinished_steps_at_shutdown_are_redelivered(
    transport: InMemoryTransport, start_worker: Any
) -> None:
    attempts: list[int] = []
    first_started = asyncio.Event()

    @activity("stuck")
    async def stuck(ctx: ActivityContext) -> str:
        attempts.append(ctx.attempt)
        if ctx.attempt == 1:
            first_started.set()
            await asyncio.sleep(30)
        return "second time lucky"

    first = Worker(transport, [stuck], drain_timeout=0.1)
    task = asyncio.ensure_future(first.run())
    dispatcher = WorkflowDispatcher(transport)
    cid = await dispatcher.dispatch_workflow([ActivitySpec(name="stuck")])
    await asyncio.wait_for(first_started.wait(), 5)
    first.stop()
    await asyncio.wait_for(task, 5)
    start_worker(Worker(transport, [stuck]))
    result = await dispatcher.wait_for(cid, timeout=5)
    assert result.output == "second time lucky" and attempts == [1, 2]


def _ok_activity() -> Any:
    @activity("ok")
    async def ok(ctx: ActivityContext) -> str:
        return "fine"

    return ok


async def _assert_still_works(transport: InMemoryTransport) -> None:
    dispatcher = WorkflowDispatcher(transport)
    result = await dispatcher.wait_for(
        await dispatcher.dispatch_workflow([ActivitySpec(name="ok")]), timeout=5
    )
    assert result.status == "completed" and result.output == "fine"


async def test_a_received_message_is_size_checked_once(
    transport: InMemoryTransport, start_worker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from paigeant.workflow import codec, wire

    checked: list[int] = []
    real_check = codec.check_size

    def counting_check(data: bytes, limit: int | None = None) -> None:
        checked.append(len(data))
        real_check(data, limit)

    monkeypatch.setattr(codec, "check_size", counting_check)
    monkeypatch.setattr(wire, "check_size", counting_check)
    received: list[bytes] = []
    real_open = wire.Wire.open

    def recording_open(self: wire.Wire, delivery: Any) -> bytes:
        received.append(delivery.body)
        return real_open(self, delivery)

    monkeypatch.setattr(wire.Wire, "open", recording_open)
    start_worker(Worker(transport, [_ok_activity()]))
    dispatcher = WorkflowDispatcher(transport)
    cid = await dispatcher.dispatch_workflow([ActivitySpec(name="ok")])
    result = await dispatcher.wait_for(cid, timeout=5)
    await dispatcher.close()
    assert result.status == "completed"
    (step_body,) = [body for body in received if b'"routing_slip"' in body]
    assert checked.count(len(step_body)) == 2, "expected one check on send and one on receipt"
