"""Workflow store throughput and latency: what one monitor records, and how fast ``list`` answers.

    uv run python benchmarks/store.py                                  # sqlite and postgres
    uv run python benchmarks/store.py --store sqlite --list-workflows 100000
    uv run python benchmarks/store.py --skip-keep-up --skip-list

Three measurements, each on every ``--store``:

- ``record``: signed events of W workflows x K steps (WorkflowDispatched, ActivityStarted and
  ActivityCompleted per step, WorkflowCompleted) wait on the in-memory monitor queue; one Monitor
  records them all. Reports events recorded per second (target >= 2,000).
- ``keep_up``: the hops benchmark's workload (W workflows x K no-op steps through a real worker,
  hmac-signed) dispatched with ``monitor=True``, a Monitor recording in the same process. Reports
  the events per second the workload produced, the monitor's queue depth (max), and how long
  after the last workflow finished the store held every one (the lag).
- ``list``: a store holding N workflows (default 100,000); p50/p99 of ``list`` (first page, by
  status, by activity, a page deep through a cursor) and ``counts`` (overall and
  for one activity; target p50 < 20 ms).

PostgreSQL runs in a schema of its own (dropped after) on PAIGEANT_POSTGRES_TEST_URL, default
postgresql://127.0.0.1:5432/test. Prints JSON and a one-line summary.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from _common import percentile, report

from paigeant import (
    ActivityContext,
    ActivitySpec,
    EventType,
    HmacSigner,
    InMemoryTransport,
    Monitor,
    SqliteWorkflowStore,
    Worker,
    WorkflowDispatcher,
    WorkflowStore,
    activity,
    monitor_queue,
)
from paigeant.testing import WorkflowEvents
from paigeant.workflow.codec import canonical_json
from paigeant.workflow.wire import Wire

POSTGRES_URL = os.environ.get("PAIGEANT_POSTGRES_TEST_URL", "postgresql://127.0.0.1:5432/test")


@contextlib.asynccontextmanager
async def open_store(kind: str, directory: Path) -> AsyncIterator[WorkflowStore]:
    """A fresh, connected store of ``kind``; removed afterwards."""
    if kind == "sqlite":
        store: WorkflowStore = SqliteWorkflowStore(url=str(directory / f"{uuid.uuid4().hex}.db"))
        async with store:
            yield store
        return
    import psycopg

    from paigeant_postgres import PostgresWorkflowStore

    schema = f"paigeant_bench_{uuid.uuid4().hex[:8]}"
    store = PostgresWorkflowStore(url=POSTGRES_URL, schema=schema, max_size=8)
    try:
        async with store:
            yield store
    finally:
        async with await psycopg.AsyncConnection.connect(POSTGRES_URL, autocommit=True) as db:
            await db.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def workflow_events(workflows: int, steps: int) -> list[Any]:
    """Every event W workflows of K steps send to a monitor, in the order they would."""
    names = [f"step-{i}" for i in range(steps)]
    events = []
    for _ in range(workflows):
        w = WorkflowEvents()
        events.append(w.dispatched(names, {"k": "v"}))
        for i, name in enumerate(names):
            events += [w.started(i, name), w.completed(i, name, {"i": i})]
        events.append(w.finished(EventType.WORKFLOW_COMPLETED, steps - 1, variables={"k": "v"}))
    return events


async def record_rate(kind: str, directory: Path, workflows: int, steps: int) -> dict[str, Any]:
    """Events per second one monitor records from a full queue."""
    signer = HmacSigner(secrets.token_bytes(32), key_id="bench")
    wire = Wire(signer)
    events = workflow_events(workflows, steps)
    async with InMemoryTransport() as transport, open_store(kind, directory) as store:
        for event in events:
            body = canonical_json(event.model_dump(mode="json", exclude_none=True))
            out = wire.seal(
                monitor_queue(),
                body,
                message_id=event.id,
                correlation_id=event.correlation_id,
                traceparent=None,
            )
            await transport.publish(
                out.queue, out.body, message_id=out.message_id, headers=out.headers
            )
        monitor = Monitor(transport, store, signer=signer)
        started = time.perf_counter()
        task = asyncio.ensure_future(monitor.run())
        await monitor.wait_recorded(events[-1].correlation_id, timeout=600)  # the queue is FIFO
        for _ in range(1000):  # the last batch's count follows its commit (another connection)
            if monitor.recorded >= len(events):
                break
            await asyncio.sleep(0.001)
        elapsed = time.perf_counter() - started
        assert monitor.recorded == len(events), monitor.recorded
        monitor.stop()
        await task
        assert (await store.counts())["completed"] >= workflows
    return {
        "store": kind,
        "events": len(events),
        "seconds": round(elapsed, 3),
        "events_per_second": round(len(events) / elapsed, 1),
    }


def no_op_activities(steps: int) -> list[Any]:
    activities = []
    for i in range(steps):

        async def step(ctx: ActivityContext) -> None:
            return None

        activities.append(activity(f"step-{i}")(step))
    return activities


async def keep_up(kind: str, directory: Path, workflows: int, steps: int) -> dict[str, Any]:
    """The hops workload with monitoring on and a monitor in the same process."""
    signer = HmacSigner(secrets.token_bytes(32), key_id="bench")
    itinerary = [ActivitySpec(name=f"step-{i}") for i in range(steps)]
    async with InMemoryTransport() as transport, open_store(kind, directory) as store:
        worker = Worker(
            transport, no_op_activities(steps), concurrency=64, signer=signer, handle_signals=False
        )
        monitor = Monitor(transport, store, signer=signer)
        tasks = [asyncio.ensure_future(worker.run()), asyncio.ensure_future(monitor.run())]
        dispatcher = WorkflowDispatcher(transport, signer=signer, monitor=True)
        depth = 0

        async def sample() -> None:
            nonlocal depth
            while True:
                stats = await transport.stats(monitor_queue())
                depth = max(depth, stats.ready + stats.in_flight)
                await asyncio.sleep(0.02)

        sampler = asyncio.ensure_future(sample())
        started = time.perf_counter()
        cids = [await dispatcher.dispatch_workflow(itinerary) for _ in range(workflows)]
        await asyncio.gather(*(dispatcher.wait_for(cid, timeout=600) for cid in cids))
        finished = time.perf_counter()
        for cid in cids:
            await monitor.wait_recorded(cid, timeout=600)
        recorded = time.perf_counter()
        sampler.cancel()
        events = monitor.recorded
        worker.stop()
        monitor.stop()
        await asyncio.gather(*tasks)
        await dispatcher.close()
    return {
        "store": kind,
        "workflows": workflows,
        "steps": steps,
        "hops_per_second": round(workflows * steps / (finished - started), 1),
        "events": events,
        "events_produced_per_second": round(events / (finished - started), 1),
        "monitor_lag_seconds": round(recorded - finished, 3),
        "max_monitor_queue_depth": depth,
    }


async def list_latency(kind: str, directory: Path, workflows: int, samples: int) -> dict[str, Any]:
    """p50/p99 of list queries and counts on a store holding ``workflows`` workflows."""
    async with open_store(kind, directory) as store:
        filled = time.perf_counter()
        batch = []
        for i in range(workflows):
            w = WorkflowEvents()
            batch.append(w.dispatched([f"fetch-{i % 10}", "think", "write"]))
            if i % 3 == 0:
                batch += [
                    w.completed(0, f"fetch-{i % 10}", i),
                    w.finished(EventType.WORKFLOW_COMPLETED, 0),
                ]
            if len(batch) >= 2000:
                await store.record_many(batch)
                batch = []
        if batch:
            await store.record_many(batch)
        fill_seconds = time.perf_counter() - filled
        deep = await store.list(limit=50)
        for _ in range(100):  # a cursor 5,000 workflows deep
            if deep.next_cursor is None:
                break
            deep = await store.list(limit=50, cursor=deep.next_cursor)
        cursor = deep.next_cursor
        queries = {
            "first_page": lambda: store.list(limit=50),
            "by_status": lambda: store.list(status="completed", limit=50),
            "by_activity": lambda: store.list(activity="fetch-3", limit=50),
            "status_and_activity": lambda: store.list(
                status="running", activity="fetch-7", limit=50
            ),
            "deep_cursor": lambda: store.list(limit=50, cursor=cursor),
            "counts": lambda: store.counts(),
            "counts_by_activity": lambda: store.counts(activity="fetch-3"),
        }
        results: dict[str, Any] = {
            "store": kind,
            "workflows": workflows,
            "fill_seconds": round(fill_seconds, 1),
        }
        for name, query in queries.items():
            timings = []
            for _ in range(samples):
                started = time.perf_counter()
                await query()
                timings.append(time.perf_counter() - started)
            results[f"{name}_p50_ms"] = round(percentile(timings, 50) * 1000, 2)
            results[f"{name}_p99_ms"] = round(percentile(timings, 99) * 1000, 2)
    return results


def main() -> None:
    """Parse arguments, run each measurement on each store, print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", action="append", choices=["sqlite", "postgres"])
    parser.add_argument("--workflows", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--list-workflows", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--skip-keep-up", action="store_true")
    parser.add_argument("--skip-list", action="store_true")
    args = parser.parse_args()
    stores = args.store or ["sqlite", "postgres"]
    output: dict[str, list[dict[str, Any]]] = {"record": [], "keep_up": [], "list": []}
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        for kind in stores:
            output["record"].append(
                asyncio.run(record_rate(kind, directory, args.workflows, args.steps))
            )
            if not args.skip_keep_up:
                output["keep_up"].append(
                    asyncio.run(keep_up(kind, directory, args.workflows, args.steps))
                )
            if not args.skip_list:
                output["list"].append(
                    asyncio.run(list_latency(kind, directory, args.list_workflows, args.samples))
                )
    parts = [
        f"{r['store']}: {r['events_per_second']:,.0f} events/s recorded" for r in output["record"]
    ]
    parts += [
        f"{r['store']} keep-up: workload {r['events_produced_per_second']:,.0f} events/s "
        f"({r['hops_per_second']:,.0f} hops/s), lag {r['monitor_lag_seconds']}s, "
        f"max depth {r['max_monitor_queue_depth']}"
        for r in output["keep_up"]
    ]
    parts += [
        f"{r['store']} list at {r['workflows']:,}: p50 first {r['first_page_p50_ms']} ms, "
        f"status {r['by_status_p50_ms']} ms, activity {r['by_activity_p50_ms']} ms, "
        f"deep {r['deep_cursor_p50_ms']} ms, counts {r['counts_p50_ms']} ms"
        for r in output["list"]
    ]
    report(output, "; ".join(parts))


if __name__ == "__main__":
    main()
