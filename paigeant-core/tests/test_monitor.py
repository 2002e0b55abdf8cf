"""The monitor: records real workflows, acks only after the store committed, rejects bad events."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from paigeant import (
    DEAD_LETTER_REASON_HEADER,
    ActivityContext,
    ActivitySpec,
    HmacSigner,
    MemoryWorkflowStore,
    Monitor,
    RetryPolicy,
    SqliteWorkflowStore,
    StoreUnavailableError,
    Worker,
    WorkflowDispatcher,
    WorkflowEvent,
    WorkflowStore,
    activity,
    dead_letter_queue,
    monitor_queue,
)
from paigeant.testing import Receiver, WorkflowEvents
from paigeant.transports.inmemory import InMemoryTransport
from paigeant.workflow.codec import canonical_json
from paigeant.workflow.wire import Wire

SIGNER = HmacSigner(b"k" * 32, key_id="tests")


@activity("reserve")
async def reserve(ctx: ActivityContext) -> dict[str, str]:
    return {"seat": "12A"}


@reserve.compensate
async def release(ctx: ActivityContext) -> None:
    return None


@activity("charge", retry=RetryPolicy(max_attempts=2, initial_delay=0.01, jitter=0))
async def charge(ctx: ActivityContext) -> None:
    raise RuntimeError("card declined")


@activity("ticket")
async def ticket(ctx: ActivityContext) -> str:
    return "T-1"


@contextlib.asynccontextmanager
async def running(*tasks: Worker | Monitor) -> AsyncIterator[None]:
    futures = [asyncio.ensure_future(task.run()) for task in tasks]
    try:
        await asyncio.gather(*(task.ready.wait() for task in tasks))
        yield
    finally:
        for task in tasks:
            task.stop()
        done, pending = await asyncio.wait(futures, timeout=10)
        for future in pending:
            future.cancel()
        for future in done:
            future.result()


def event_bodies(events: Sequence[WorkflowEvent]) -> list[bytes]:
    return [canonical_json(e.model_dump(mode="json", exclude_none=True)) for e in events]


async def publish_events(transport: InMemoryTransport, events: Sequence[WorkflowEvent]) -> None:
    wire = Wire(SIGNER)
    for event, body in zip(events, event_bodies(events), strict=True):
        out = wire.seal(
            monitor_queue(),
            body,
            message_id=event.id or "",
            correlation_id=event.correlation_id,
            traceparent=None,
        )
        await transport.publish(out.queue, out.body, message_id=out.message_id, headers=out.headers)


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_a_faulted_workflow_is_recorded_step_by_step(
    transport: InMemoryTransport, tmp_path: Path, kind: str
) -> None:
    store: WorkflowStore = (
        MemoryWorkflowStore()
        if kind == "memory"
        else SqliteWorkflowStore(url=str(tmp_path / "s.db"))
    )
    async with store:
        worker = Worker(transport, [reserve, charge, ticket], signer=SIGNER, handle_signals=False)
        monitor = Monitor(transport, store, signer=SIGNER)
        async with running(worker, monitor):
            dispatcher = WorkflowDispatcher(transport, signer=SIGNER, monitor=True, name="tests")
            cid = await dispatcher.dispatch_workflow(
                [ActivitySpec(name=n) for n in ("reserve", "charge", "ticket")],
                variables={"who": "ann"},
            )
            assert (await dispatcher.wait_for(cid, timeout=10)).status == "faulted"
            record = await monitor.wait_recorded(cid, timeout=10)
            await dispatcher.close()
    assert record.status == "faulted"
    assert record.error == "RuntimeError: card declined"
    assert record.dispatcher == "tests" and record.variables == {"who": "ann"}
    assert [(s.name, s.status, s.attempts) for s in record.steps] == [
        ("reserve", "completed", 1),
        ("charge", "faulted", 2),
    ]
    assert record.steps[0].output == {"seat": "12A"} and record.steps[0].duration is not None
    assert [(r.attempt, r.error) for r in record.steps[1].retries] == [
        (1, "RuntimeError: card declined")
    ]
    assert [(c.name, c.status) for c in record.compensations] == [("reserve", "compensated")]
    assert record.pending == ["ticket"]
    assert monitor.recorded == record.events and monitor.rejected == 0


async def test_bad_events_are_dead_lettered_with_a_reason_and_the_monitor_goes_on(
    transport: InMemoryTransport,
) -> None:
    store = MemoryWorkflowStore()
    w = WorkflowEvents()
    good = w.dispatched(["a"])
    await transport.publish(monitor_queue(), b'{"type":"WorkflowCompleted"}', message_id="unsigned")
    wire = Wire(SIGNER)
    bad = wire.seal(
        monitor_queue(),
        b'{"type":"NoSuchEvent"}',
        message_id="m",
        correlation_id="c",
        traceparent=None,
    )
    await transport.publish(bad.queue, bad.body, message_id="malformed", headers=bad.headers)
    await publish_events(transport, [good])
    monitor = Monitor(transport, store, signer=SIGNER)
    async with running(monitor):
        for _ in range(100):
            if await store.get(w.correlation_id) is not None and monitor.rejected == 2:
                break
            await asyncio.sleep(0.02)
    assert await store.get(w.correlation_id) is not None
    reasons = {}
    async with Receiver(transport, dead_letter_queue(monitor_queue())) as dead:
        while (delivery := await dead.get(timeout=0.3)) is not None:
            reasons[delivery.message_id] = delivery.headers[DEAD_LETTER_REASON_HEADER]
            await delivery.ack()
    assert reasons["unsigned"].startswith("invalid signature")
    assert reasons["malformed"].startswith("malformed event: type:")


class BlockingStore(MemoryWorkflowStore):
    """Commits nothing until released; counts calls."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.entered = asyncio.Event()

    async def record_many(self, events: Sequence[WorkflowEvent]) -> int:
        self.entered.set()
        await self.release.wait()
        return await super().record_many(events)


async def test_nothing_is_acked_before_the_store_commits_and_a_killed_monitor_loses_nothing(
    transport: InMemoryTransport,
) -> None:
    workflows = [WorkflowEvents() for _ in range(20)]
    events = [e for w in workflows for e in (w.dispatched(["a"]), w.completed(0, "a"))]
    await publish_events(transport, events)
    blocking = BlockingStore()
    monitor = Monitor(transport, blocking, signer=SIGNER, batch_size=15)
    task = asyncio.ensure_future(monitor.run())
    await asyncio.wait_for(blocking.entered.wait(), 5)
    stats = await transport.stats(monitor_queue())
    assert stats.in_flight > 0 and stats.in_flight + stats.ready == len(events), stats
    task.cancel()  # the monitor dies mid-batch, before its store committed
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert await blocking.get(workflows[0].correlation_id) is None
    for delivery in list(transport._held):  # what a dead consumer's broker does
        delivery.release()
    store = MemoryWorkflowStore()
    async with running(Monitor(transport, store, signer=SIGNER)):
        for _ in range(200):
            if (await store.counts())["running"] == 20:
                break
            await asyncio.sleep(0.02)
    for w in workflows:
        record = await store.get(w.correlation_id)
        assert record is not None and record.events == 2 and record.steps[0].status == "completed"
    assert (await transport.stats(monitor_queue())).ready == 0


class CommitsThenFails(MemoryWorkflowStore):
    """Commits the first batch, then raises as if the process died before acking it."""

    failed = False

    async def record_many(self, events: Sequence[WorkflowEvent]) -> int:
        new = await super().record_many(events)
        if not self.failed:
            self.failed = True
            raise RuntimeError("crashed after commit")
        return new


async def test_a_redelivered_event_changes_nothing(transport: InMemoryTransport) -> None:
    w = WorkflowEvents()
    events = [w.dispatched(["a", "b"]), w.completed(0, "a", 1), w.completed(1, "b", 2)]
    await publish_events(transport, events)
    store = CommitsThenFails()
    monitor = Monitor(transport, store, signer=SIGNER)
    async with running(monitor):
        for _ in range(200):
            if monitor.recorded == 3:
                break
            await asyncio.sleep(0.02)
    record = await store.get(w.correlation_id)
    assert store.failed and record is not None
    assert record.events == 3, "an event applied twice"
    assert [s.output for s in record.steps] == [1, 2]


class DownThenUp(MemoryWorkflowStore):
    """Unavailable for the first few calls."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def record_many(self, events: Sequence[WorkflowEvent]) -> int:
        if self.failures:
            self.failures -= 1
            raise StoreUnavailableError("database is restarting")
        return await super().record_many(events)


async def test_a_store_outage_holds_the_batch_without_burning_deliveries(
    caplog: pytest.LogCaptureFixture,
) -> None:
    transport = InMemoryTransport(visibility_timeout=0.5, max_deliveries=2)
    async with transport:
        w = WorkflowEvents()
        await publish_events(transport, [w.dispatched(["a"])])
        store = DownThenUp(failures=3)
        async with running(Monitor(transport, store, signer=SIGNER)):
            for _ in range(300):
                if await store.get(w.correlation_id) is not None:
                    break
                await asyncio.sleep(0.02)
        assert await store.get(w.correlation_id) is not None
        assert (await transport.stats(monitor_queue())).dead == 0
        assert "workflow store unavailable (database is restarting)" in caplog.text


class RefusesOne(MemoryWorkflowStore):
    """Raises for one event id, always (a poison event)."""

    def __init__(self, poison: str) -> None:
        super().__init__()
        self.poison = poison

    async def record_many(self, events: Sequence[WorkflowEvent]) -> int:
        if any(event.id == self.poison for event in events):
            raise ValueError("cannot store this one")
        return await super().record_many(events)


async def test_a_poison_event_is_dead_lettered_by_the_transport_and_the_rest_recorded() -> None:
    transport = InMemoryTransport(visibility_timeout=5, max_deliveries=2)
    async with transport:
        w = WorkflowEvents()
        events = [w.dispatched(["a"]), w.started(0, "a"), w.completed(0, "a")]
        await publish_events(transport, events)
        store = RefusesOne(poison=events[1].id or "")
        monitor = Monitor(transport, store, signer=SIGNER, retry_delay=0.05)
        async with running(monitor):
            for _ in range(200):
                if (await transport.stats(monitor_queue())).dead == 1:
                    break
                await asyncio.sleep(0.02)
        record = await store.get(w.correlation_id)
        assert record is not None and record.events == 2
        assert (await transport.stats(monitor_queue())).dead == 1


async def test_competing_monitors_record_each_event_once(transport: InMemoryTransport) -> None:
    workflows = [WorkflowEvents() for _ in range(50)]
    events = [
        e for w in workflows for e in (w.dispatched(["a"]), w.started(0, "a"), w.completed(0, "a"))
    ]
    await publish_events(transport, events)
    store = MemoryWorkflowStore()
    first, second = (Monitor(transport, store, signer=SIGNER, batch_size=10) for _ in range(2))
    async with running(first, second):
        for _ in range(300):
            if first.recorded + second.recorded >= len(events):
                break
            await asyncio.sleep(0.01)
    assert first.recorded > 0 and second.recorded > 0, "one monitor did all the work"
    assert first.recorded + second.recorded == len(events)
    for w in workflows:
        record = await store.get(w.correlation_id)
        assert record is not None and record.events == 3


async def test_wait_recorded_times_out_with_the_correlation_id(
    transport: InMemoryTransport,
) -> None:
    monitor = Monitor(transport, MemoryWorkflowStore(), signer=SIGNER)
    with pytest.raises(TimeoutError, match="workflow nope was not recorded as finished"):
        await monitor.wait_recorded("nope", timeout=0.1)


def test_a_monitor_needs_a_signing_key_across_processes() -> None:
    class Remote(InMemoryTransport):
        crosses_processes = True

    from paigeant import ConfigurationError

    with pytest.raises(ConfigurationError, match="no signing key"):
        Monitor(Remote(), MemoryWorkflowStore())
