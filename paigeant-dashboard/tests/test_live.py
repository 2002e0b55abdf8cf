"""Live updates: the hub's fan-out and coalescing, and the event stream through a real uvicorn."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx

from paigeant import WORKFLOW_STATUSES, EventType, MemoryWorkflowStore, WorkflowRecord
from paigeant.testing import WorkflowEvents
from paigeant_dashboard import DashboardSettings, create_app
from paigeant_dashboard.live import Hub, sse_event

from .conftest import XSS, served


def record(cid: str, status: str = "running") -> WorkflowRecord:
    w = WorkflowEvents(cid)
    events = [w.dispatched(["a"])]
    if status == "completed":
        events.append(w.finished(EventType.WORKFLOW_COMPLETED, 0))
    rec = WorkflowRecord.from_event(events[0])
    for event in events[1:]:
        rec.apply(event)
    return rec


async def test_the_hub_coalesces_changes_per_workflow_and_fans_out() -> None:
    hub = Hub()
    with hub.subscribe() as one, hub.subscribe() as two:
        assert hub.subscribers == 2
        hub.publish(record("a"))
        hub.publish(record("b"))
        hub.publish(record("a", "completed"))
        batch = await one.batch(1)
        assert batch is not None
        assert [(r.correlation_id, r.status) for r in batch] == [
            ("b", "running"),
            ("a", "completed"),
        ]
        other = await two.batch(1)
        assert other is not None and len(other) == 2
        assert await one.batch(0.01) == []  # nothing new: time for a keepalive
    assert hub.subscribers == 0


async def test_a_stream_that_falls_behind_is_told_to_reload() -> None:
    hub = Hub()
    with hub.subscribe() as slow:
        for i in range(1100):
            hub.publish(record(f"w-{i}"))
        assert slow.overflowed
        batch = await slow.batch(1)
        assert batch is not None and len(batch) == 1000


async def test_closing_the_hub_ends_every_stream() -> None:
    hub = Hub()
    with hub.subscribe() as open_one:
        waiting = asyncio.ensure_future(open_one.batch(30))
        await asyncio.sleep(0.01)
        hub.close()
        assert await asyncio.wait_for(waiting, 1) is None
    with hub.subscribe() as late:
        assert await late.batch(30) is None


def test_an_event_is_one_data_line_whatever_it_holds() -> None:
    chunk = sse_event("workflow", {"text": "two\nlines\r\n" + XSS})
    lines = chunk.decode().split("\n")
    assert lines[0] == "event: workflow" and lines[1].startswith("data: ")
    assert lines[2:] == ["", ""]
    assert json.loads(lines[1][6:])["text"].endswith(XSS)


async def _events(response: httpx.Response) -> AsyncIterator[tuple[str, Any]]:
    name = None
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: ") and name is not None:
            yield name, json.loads(line[6:])
            name = None


async def test_the_stream_sends_changed_rows_with_whether_they_match_and_counts() -> None:
    store = MemoryWorkflowStore()
    app = create_app(store, settings=DashboardSettings())
    done, other = WorkflowEvents(), WorkflowEvents()
    async with (
        served(app) as url,
        httpx.AsyncClient(timeout=10) as client,
        client.stream("GET", f"{url}/events?status=completed") as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-store"
        events = _events(response)
        assert await anext(events) == ("ready", {})
        await store.record_many([other.dispatched(["x"]), done.dispatched(["x"])])
        rows: dict[str, bool] = {}
        name, data = await asyncio.wait_for(anext(events), 5)
        while name == "workflow":
            rows[data["row"]["correlation_id"]] = data["match"]
            name, data = await asyncio.wait_for(anext(events), 5)
        assert rows == {other.correlation_id: False, done.correlation_id: False}
        assert name == "counts"
        assert data["counts"]["running"] == 2 and data["total"] == 2
        await store.record(done.finished(EventType.WORKFLOW_COMPLETED, 0))
        name, data = await asyncio.wait_for(anext(events), 5)
        assert name == "workflow" and data["match"] is True
        row = data["row"]
        assert (row["correlation_id"], row["status"], row["href"]) == (
            done.correlation_id,
            "completed",
            f"/workflows/{done.correlation_id}",
        )
        assert await asyncio.wait_for(anext(events), 5) == (
            "counts",
            {
                "counts": {**dict.fromkeys(WORKFLOW_STATUSES, 0), "running": 1, "completed": 1},
                "total": 2,
            },
        )


async def test_a_workflow_page_hears_only_about_its_workflow() -> None:
    store = MemoryWorkflowStore()
    app = create_app(store, settings=DashboardSettings())
    mine, other = WorkflowEvents(), WorkflowEvents()
    await store.record(mine.dispatched(["x"]))
    query = f"workflow={mine.correlation_id}"
    async with (
        served(app) as url,
        httpx.AsyncClient(timeout=10) as client,
        client.stream("GET", f"{url}/events?{query}") as response,
    ):
        events = _events(response)
        assert await anext(events) == ("ready", {})
        await store.record(other.dispatched(["x"]))
        await asyncio.sleep(0.4)
        await store.record(mine.finished(EventType.WORKFLOW_COMPLETED, 0))
        assert await asyncio.wait_for(anext(events), 5) == ("changed", {"status": "completed"})


async def test_stopping_the_server_with_open_streams_is_quick() -> None:
    app = create_app(MemoryWorkflowStore(), settings=DashboardSettings())
    async with httpx.AsyncClient(timeout=10) as client:
        async with served(app) as url:
            streams = [client.stream("GET", f"{url}/events") for _ in range(3)]
            opened = [await stream.__aenter__() for stream in streams]
            for response in opened:
                assert await anext(_events(response)) == ("ready", {})
            assert app.state.dashboard.hub.subscribers == 3
            started = time.monotonic()
        assert time.monotonic() - started < 3
        for stream in streams:
            await stream.__aexit__(None, None, None)


async def test_under_a_sub_path_with_either_proxy_style() -> None:
    store = MemoryWorkflowStore()
    w = WorkflowEvents()
    await store.record(w.dispatched(["x"]))
    app = create_app(store, settings=DashboardSettings(root_path="/paigeant"))
    async with served(app, root_path="/paigeant") as url, httpx.AsyncClient(timeout=10) as client:
        for path in ("/workflows", "/paigeant/workflows"):  # prefix stripped by the proxy, or not
            page = await client.get(url + path, headers={"accept": "text/html"})
            assert page.status_code == 200, path
            assert f'href="/paigeant/workflows/{w.correlation_id}"' in page.text
            assert 'href="/paigeant/static/dashboard.css"' in page.text
        for path in ("/static/dashboard.js", "/paigeant/static/dashboard.js"):
            assert (await client.get(url + path)).status_code == 200, path
        home = await client.get(url + "/")
        assert home.headers["location"] == "/paigeant/workflows"
