"""The app through an in-process HTTP client: pages, filters, paging, errors, escaping, sub-path."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from paigeant import EventType, MemoryWorkflowStore, SqliteWorkflowStore, WorkflowPage
from paigeant.testing import WorkflowEvents
from paigeant_dashboard import DashboardSettings, create_app
from paigeant_dashboard.security import CONTENT_SECURITY_POLICY

from .conftest import XSS

HTML = {"accept": "text/html"}


def lifecycle(w: WorkflowEvents, *, output: Any = "done", error: str | None = None) -> list[Any]:
    """A finished workflow's events: fetch → write, completed (or faulted with ``error``)."""
    events = [w.dispatched(["fetch", "write"], {"topic": "t"}), w.completed(0, "fetch", {"n": 1})]
    if error is None:
        events += [w.completed(1, "write", output), w.finished(EventType.WORKFLOW_COMPLETED, 2)]
    else:
        events += [w.faulted(1, "write", error=error), w.finished(EventType.WORKFLOW_FAULTED, 2)]
    return events


@pytest.fixture
async def store() -> MemoryWorkflowStore:
    """A memory store with three workflows: two completed, one faulted."""
    store = MemoryWorkflowStore()
    for error in (None, None, "disk full"):
        await store.record_many(lifecycle(WorkflowEvents(), error=error))
    return store


class running:
    """``async with running(app) as client``: the app's lifespan, and a client for it."""

    def __init__(self, app: Any, **client: Any) -> None:
        self.app = app
        self.client = client
        self._lifespan: Any = None

    async def __aenter__(self) -> httpx.AsyncClient:
        self._lifespan = self.app.router.lifespan_context(self.app)
        await self._lifespan.__aenter__()
        root = self.client.pop("root_path", "")
        base = self.client.pop("base_url", "http://127.0.0.1")
        transport = httpx.ASGITransport(app=self.app, root_path=root)
        self._http = httpx.AsyncClient(transport=transport, base_url=base, **self.client)
        return self._http

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()
        await self._lifespan.__aexit__(None, None, None)


def rows(html: str) -> list[str]:
    """The HTML of each row of the workflows table, in order."""
    body = html.split('<tbody id="rows"', 1)[1].split("</tbody>", 1)[0]
    return body.split("<tr ")[1:]


def cids(html: str) -> list[str]:
    """The correlation ids of the workflows table's rows, in order."""
    return [re.findall(r'data-cid="([^"]+)"', row)[0] for row in rows(html)]


async def test_every_page_renders(store: MemoryWorkflowStore) -> None:
    app = create_app(store, settings=DashboardSettings())
    first = (await store.list()).items[-1]
    record = await store.get(first.correlation_id)
    assert record is not None and record.trace_id is not None
    async with running(app) as client:
        home = await client.get("/")
        assert (home.status_code, home.headers["location"]) == (303, "/workflows")
        listed = await client.get("/workflows", headers=HTML)
        assert listed.status_code == 200
        assert len(cids(listed.text)) == 3 and cids(listed.text)[-1] == first.correlation_id
        assert 'data-count="completed">2<' in listed.text
        assert 'data-count="faulted">1<' in listed.text
        detail = await client.get(f"/workflows/{first.correlation_id}", headers=HTML)
        assert detail.status_code == 200 and detail.text.count('<article class="step"') == 2
        trace = await client.get(f"/traces/{record.trace_id}")
        assert trace.status_code == 303
        assert trace.headers["location"] == f"/workflows/{first.correlation_id}"
        queues = await client.get("/queues", headers=HTML)
        assert queues.status_code == 200 and "No transport was given" in queues.text
        for path, code, says in [
            ("/workflows/nobody", 404, "no workflow &#39;nobody&#39; is recorded"),
            (f"/traces/{uuid.uuid4().hex}", 404, "no recorded workflow belongs to trace"),
            ("/traces/not-a-trace", 400, "is not a W3C trace id"),
            ("/workflows?status=exploded", 400, "unknown status &#39;exploded&#39;"),
            ("/workflows?cursor=garbage", 400, "invalid cursor"),
            ("/nowhere", 404, "Not Found"),
        ]:
            response = await client.get(path, headers=HTML)
            assert response.status_code == code, path
            assert says in response.text, (path, response.text)
            assert '<div class="error-page">' in response.text


async def test_filters_counts_and_cursor_paging() -> None:
    store = MemoryWorkflowStore()
    made = []
    for i in range(120):
        w = WorkflowEvents()
        made.append(w.correlation_id)
        await store.record_many(lifecycle(w, error="boom" if i % 4 == 0 else None))
    app = create_app(store, settings=DashboardSettings(page_size=50))
    async with running(app) as client:
        seen: list[str] = []
        url = "/workflows"
        for expected in (50, 50, 20):
            page = await client.get(url, headers=HTML)
            found = cids(page.text)
            assert len(found) == expected
            seen += found
            more = re.search(r'<a href="([^"]+)" rel="next">', page.text)
            if expected == 20:
                assert more is None and "← Newest" in page.text
                break
            assert more is not None
            url = more.group(1).replace("&amp;", "&")
        assert seen == list(reversed(made)), "not every workflow once, newest first"
        faulted = await client.get("/workflows?status=faulted", headers=HTML)
        assert len(cids(faulted.text)) == 30
        assert all('class="badge status-faulted"' in row for row in rows(faulted.text))
        by_activity = await client.get("/workflows?activity=nothing", headers=HTML)
        assert (
            cids(by_activity.text) == [] and "No workflows match these filters" in by_activity.text
        )
        assert 'data-count="total">0<' in by_activity.text
        assert '<option value="fetch">' in faulted.text  # activities to filter by


async def test_every_value_is_escaped_in_the_page() -> None:
    store = MemoryWorkflowStore()
    w = WorkflowEvents(f"{XSS}/../?#")
    events = lifecycle(w, error=XSS)
    events[0] = w.dispatched(["fetch", "write"], {"note": XSS})
    await store.record_many(events)
    app = create_app(store, settings=DashboardSettings())
    async with running(app) as client:
        listed = await client.get("/workflows", headers=HTML)
        link = re.search(r'<a data-field="link" href="([^"]+)"', listed.text)
        assert link is not None
        assert link.group(1) == "/workflows/" + "%3Cscript%3Ealert%281%29%3C%2Fscript%3E" + (
            "%3Cimg%20src%3Dx%20onerror%3Dalert%282%29%3E%2F..%2F%3F%23"
        )
        detail = await client.get(link.group(1), headers=HTML)
        assert detail.status_code == 200
        for page in (listed.text, detail.text):
            assert XSS not in page and "<img src=x" not in page
            assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;" in page


async def test_a_missing_store_is_an_error_page(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the store's directory should be")
    app = create_app(
        SqliteWorkflowStore(url=str(blocker / "paigeant.db")), settings=DashboardSettings()
    )
    async with running(app) as client:
        for path in ("/workflows", f"/workflows/{uuid.uuid4()}", "/queues", "/events"):
            response = await client.get(path, headers=HTML)
            assert response.status_code == 503, path
            assert "The workflow store cannot be read: cannot open the sqlite workflow store" in (
                response.text
            )
            assert "Traceback" not in response.text and 'File "' not in response.text


async def test_an_unreadable_store_is_an_error_page_until_it_is_fixed(tmp_path: Path) -> None:
    path = tmp_path / "paigeant.db"
    path.write_bytes(b"this is not a database " * 200)
    app = create_app(SqliteWorkflowStore(url=str(path)), settings=DashboardSettings())
    app.state.dashboard.feed.retry_interval = 0.05
    async with running(app) as client:
        response = await client.get("/workflows", headers=HTML)
        assert response.status_code == 503
        assert "cannot be used: file is not a database" in response.text
        assert "Traceback" not in response.text
        path.unlink()  # fixed: the next attempt creates a fresh store
        for _ in range(100):
            response = await client.get("/workflows", headers=HTML)
            if response.status_code == 200:
                break
            await _sleep(0.05)
        assert response.status_code == 200 and "No workflows are recorded yet" in response.text


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


class _BrokenStore(MemoryWorkflowStore):
    async def list(self, **query: Any) -> WorkflowPage:
        raise RuntimeError(f"internal detail {self.secret}")

    secret = "s3cr3t-" + uuid.uuid4().hex


async def test_an_unexpected_error_is_a_page_without_details(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = _BrokenStore()
    app = create_app(store, settings=DashboardSettings())
    async with running(app) as client:
        with pytest.raises(RuntimeError):  # the in-process client re-raises, as a server logs
            await client.get("/workflows", headers=HTML)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        running(app),
        httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client,
    ):
        response = await client.get("/workflows", headers=HTML)
    assert response.status_code == 500
    assert "Something went wrong while building this page." in response.text
    assert store.secret not in response.text and "Traceback" not in response.text
    assert any(store.secret in r.getMessage() for r in caplog.records), "not logged"


async def test_security_headers_on_every_response(store: MemoryWorkflowStore) -> None:
    app = create_app(store, settings=DashboardSettings())
    async with running(app) as client:
        for path in ("/workflows", "/nowhere", "/static/dashboard.css", "/static/dashboard.js"):
            response = await client.get(path, headers=HTML)
            assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["x-frame-options"] == "DENY"
            assert response.headers["referrer-policy"] == "no-referrer"
            assert (response.headers.get("cache-control") == "no-store") == (
                not path.startswith("/static/")
            ), path
        page = await client.get("/workflows", headers=HTML)
        assert "<script>" not in page.text and "style=" not in page.text  # all from /static


@pytest.mark.parametrize(
    ("host", "allowed", "status"),
    [
        ("127.0.0.1:8765", None, 200),
        ("localhost", None, 200),
        ("[::1]:8765", None, 200),
        ("evil.example", None, 400),
        ("127.0.0.1.evil.example", None, 400),
        ("dash.example.com", ("dash.example.com",), 200),
        ("localhost", ("dash.example.com",), 400),
        ("anything.example", ("*",), 200),
    ],
)
async def test_the_host_header_must_be_an_allowed_name(
    store: MemoryWorkflowStore, host: str, allowed: tuple[str, ...] | None, status: int
) -> None:
    settings = DashboardSettings(allowed_hosts=allowed) if allowed else DashboardSettings()
    app = create_app(store, settings=settings)
    async with running(app) as client:
        response = await client.get("/workflows", headers={"host": host, **HTML})
    assert response.status_code == status
    if status == 400:
        assert (
            "--allowed-host" in response.text
            and "PAIGEANT_DASHBOARD_ALLOWED_HOSTS" in response.text
        )


async def test_behind_a_proxy_under_a_sub_path_every_link_keeps_it(
    store: MemoryWorkflowStore,
) -> None:
    app = create_app(store, settings=DashboardSettings(root_path="/ops/paigeant"))
    first = (await store.list()).items[0].correlation_id
    async with running(app, root_path="/ops/paigeant") as client:
        home = await client.get("/ops/paigeant/")
        assert home.headers["location"] == "/ops/paigeant/workflows"
        page = await client.get("/ops/paigeant/workflows", headers=HTML)
        assert page.status_code == 200
        links = re.findall(r'(?:href|src|action|data-events)="([^"]+)"', page.text)
        assert links and all(link.startswith("/ops/paigeant/") for link in links), links
        assert f'href="/ops/paigeant/workflows/{first}"' in page.text
        css = await client.get("/ops/paigeant/static/dashboard.css")
        assert css.status_code == 200 and "--accent" in css.text


async def test_revisions_pending_steps_retries_and_termination_are_shown() -> None:
    store = MemoryWorkflowStore()
    w = WorkflowEvents()
    events = [w.dispatched(["plan", "finish"]), w.started(0, "plan"), w.retried(0, "plan", 1)]
    events += [w.started(0, "plan", 2), w.completed(0, "plan", {"steps": 2}, attempt=2)]
    events += [w.revised(0, "plan", ["extra", "extra"]), w.completed(1, "extra", "one")]
    events.append(w.finished(EventType.WORKFLOW_TERMINATED, 2, reason="nothing left to do"))
    await store.record_many(events)
    app = create_app(store, settings=DashboardSettings())
    async with running(app) as client:
        page = (await client.get(f"/workflows/{w.correlation_id}", headers=HTML)).text
    assert 'class="badge status-terminated"' in page
    assert "<h2>Reason</h2><p>nothing left to do</p>" in page
    assert "After <strong>plan</strong> (step 1) added" in page
    assert page.count('<span class="badge small status-pending">extra</span>') == 3  # 2 + pending
    assert "As revised: plan → extra → extra → finish" in page
    assert "Not started yet:" in page and ">finish</span>" in page
    assert 'attempt 1 failed</span> <span class="error-text">RuntimeError: boom</span>' in page
    assert "2 attempts" in page
