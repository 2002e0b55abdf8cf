"""Dashboard server time: the workflows page (and one workflow's page) over a big sqlite store.

    uv run python benchmarks/dashboard.py                        # 100,000 workflows, 100 rounds
    uv run python benchmarks/dashboard.py --workflows 20000 --rounds 30

Fills a sqlite store with N workflows (default 100,000: 10 activities, a third completed, the rest
running, each with its dispatch, a completed first step and, when completed, its final event),
then serves the real app in-process (httpx's ASGI transport: no sockets, no browser) and times
whole requests from the client side, so each figure is an upper bound of the server's time:
routing, middleware (host check, headers, session, token gate), the store's queries (page,
counts, activities) on a thread, and rendering the page with autoescape. Pages of 50 rows.
Each round requests every page once (interleaved), after a warm-up round. Reports p50/p95 per
page; the target is p50 and p95 under 150 ms for the workflows page. Prints JSON and a summary.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from _common import percentile, report

from paigeant import EventType, SqliteWorkflowStore
from paigeant.testing import WorkflowEvents
from paigeant_dashboard import DashboardSettings, create_app

TARGET_MS = 150.0


async def fill(store: SqliteWorkflowStore, workflows: int) -> tuple[str, float]:
    """Record ``workflows`` workflows; return one correlation id and the seconds it took."""
    started = time.perf_counter()
    batch: list[Any] = []
    some = ""
    for i in range(workflows):
        w = WorkflowEvents()
        fetch = f"fetch-{i % 10}"
        batch.append(w.dispatched([fetch, "think", "write"], {"customer": f"c-{i}"}))
        batch.append(w.completed(0, fetch, {"rows": i % 50, "text": "x" * (i % 400)}))
        if i % 3 == 0:
            batch += [
                w.completed(1, "think", "a thought " * 20),
                w.completed(2, "write", {"written": True}),
                w.finished(EventType.WORKFLOW_COMPLETED, 2),
            ]
        some = w.correlation_id
        if len(batch) >= 4000:
            await store.record_many(batch)
            batch = []
    if batch:
        await store.record_many(batch)
    return some, time.perf_counter() - started


async def measure(path: Path, workflows: int, rounds: int) -> dict[str, Any]:
    """Fill the store, then time each page over ``rounds`` interleaved rounds."""
    async with SqliteWorkflowStore(url=str(path)) as store:
        some, fill_seconds = await fill(store, workflows)
        deep = await store.list(limit=50)
        for _ in range(100):  # a cursor 5,000 workflows deep
            if deep.next_cursor is None:
                break
            deep = await store.list(limit=50, cursor=deep.next_cursor)
    pages = {
        "workflows": "/workflows",
        "by_status": "/workflows?status=completed",
        "by_activity": "/workflows?activity=fetch-3",
        "status_and_activity": "/workflows?status=running&activity=fetch-7",
        "deep_cursor": f"/workflows?cursor={deep.next_cursor}",
        "one_workflow": f"/workflows/{some}",
    }
    app = create_app(SqliteWorkflowStore(url=str(path)), settings=DashboardSettings())
    timings: dict[str, list[float]] = {name: [] for name in pages}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1"
        ) as client,
    ):
        for round_ in range(rounds + 1):
            for name, url in pages.items():
                started = time.perf_counter()
                response = await client.get(url, headers={"accept": "text/html"})
                elapsed = time.perf_counter() - started
                assert response.status_code == 200, (url, response.status_code)
                if round_:  # the first round warms caches
                    timings[name].append(elapsed)
        rows = response.text.count('<article class="step"')
    result: dict[str, Any] = {
        "workflows": workflows,
        "rounds": rounds,
        "fill_seconds": round(fill_seconds, 1),
        "steps_on_one_workflow_page": rows,
        "target_ms": TARGET_MS,
    }
    for name, values in timings.items():
        result[f"{name}_p50_ms"] = round(percentile(values, 50) * 1000, 2)
        result[f"{name}_p95_ms"] = round(percentile(values, 95) * 1000, 2)
    result["workflows_page_under_target"] = result["workflows_p95_ms"] < TARGET_MS
    return result


def main() -> None:
    """Parse arguments, measure, print the report."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--workflows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = asyncio.run(measure(Path(tmp) / "dashboard.db", args.workflows, args.rounds))
    names = ("workflows", "by_status", "by_activity", "status_and_activity", "deep_cursor")
    summary = f"dashboard at {result['workflows']:,} workflows (sqlite): " + ", ".join(
        f"{name} p50 {result[f'{name}_p50_ms']} / p95 {result[f'{name}_p95_ms']} ms"
        for name in (*names, "one_workflow")
    )
    verdict = "under" if result["workflows_page_under_target"] else "OVER"
    report(result, f"{summary}; workflows page {verdict} the {TARGET_MS:.0f} ms target")


if __name__ == "__main__":
    main()
