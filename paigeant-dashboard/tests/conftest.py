"""Fixtures: real workflows recorded by a real monitor, the dashboard on a free port, Chromium.

``World`` runs workers and a monitor on an in-memory transport, recording into a sqlite file,
exactly as a deployment does (only in one process), so every page is built from real events.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import uvicorn
from starlette.applications import Starlette

from paigeant import (
    ActivityContext,
    ActivitySpec,
    HmacSigner,
    IdentityProvider,
    InMemoryTransport,
    Monitor,
    NonRetryableError,
    RetryPolicy,
    SqliteWorkflowStore,
    Worker,
    WorkflowDispatcher,
    WorkflowRecord,
    activity,
)
from paigeant_dashboard import DashboardServer

#: The issue's XSS payload: agent outputs are untrusted model text.
XSS = "<script>alert(1)</script><img src=x onerror=alert(2)>"
#: Secrets that must never appear in a page.
SIGNING_KEY = "signing-key-" + uuid.uuid4().hex
OBO_TOKEN = "obo-token-" + uuid.uuid4().hex
DASHBOARD_TOKEN = "dashboard-token-" + uuid.uuid4().hex

#: Read at import, before the fixtures below clear every PAIGEANT_* variable.
SCREENSHOTS_DIR = os.environ.get("PAIGEANT_DASHBOARD_SCREENSHOTS")
#: Set to 1 to (re)write docs/images/dashboard-*.png from the browser test run.
DOCS_SCREENSHOTS = os.environ.get("PAIGEANT_DASHBOARD_DOCS_SCREENSHOTS") == "1"
DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module", autouse=True)
def _clean_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No PAIGEANT_* setting of the developer's leaks in; the home is a fresh directory."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("PAIGEANT_"):
                patch.delenv(name)
        patch.setenv("PAIGEANT_HOME", str(tmp_path_factory.mktemp("paigeant-home")))
        yield


class _AnyToken(IdentityProvider):
    """Accepts any on-behalf-of token (the tests check that tokens are never shown)."""

    name = "any"

    def validate(self, token: str) -> Mapping[str, Any]:
        return {"sub": "ann@example.com"}


class World:
    """Workers and a monitor on one in-memory transport, recording into a sqlite file."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "paigeant.db"
        self.signer = HmacSigner(SIGNING_KEY.encode(), key_id="tests")
        self.transport = InMemoryTransport(max_deliveries=2)
        self.store = SqliteWorkflowStore(url=str(self.path))
        self.release = asyncio.Event()  # the "wait" activity runs until this is set
        #: Correlation ids a test module's setup wants to remember.
        self.first = ""
        self.running = ""
        self.faulted = ""
        self._tasks: list[asyncio.Future[None]] = []
        self.worker = Worker(
            self.transport,
            self._activities(),
            signer=self.signer,
            identity_provider=_AnyToken(),
            handle_signals=False,
            name="worker-1",
        )
        # "ledger" runs on a worker of its own, deployed with an outdated signing key: it
        # dead-letters every message (invalid signature) until use_ledger_key(True) redeploys it.
        self._ledger: tuple[Worker, asyncio.Future[None]] | None = None
        self.monitor = Monitor(self.transport, self.store, signer=self.signer)
        self.dispatcher = WorkflowDispatcher(
            self.transport, signer=self.signer, monitor=True, name="tests"
        )

    def _activities(self) -> list[Any]:
        @activity("fetch")
        async def fetch(ctx: ActivityContext) -> dict[str, Any]:
            await asyncio.sleep(float(ctx.arguments.get("sleep", 0.02)))
            return {"rows": ctx.arguments.get("rows", 3), "source": "crm"}

        failed_once: set[str] = set()

        @activity("think", retry=RetryPolicy(max_attempts=3, initial_delay=0.05, jitter=0))
        async def think(ctx: ActivityContext) -> str:
            await asyncio.sleep(float(ctx.arguments.get("sleep", 0.05)))
            if ctx.arguments.get("fail_once") and ctx.correlation_id not in failed_once:
                failed_once.add(ctx.correlation_id)
                raise RuntimeError("model overloaded, try again")
            return str(ctx.arguments.get("text", "a thought"))

        @activity("write")
        async def write(ctx: ActivityContext) -> Any:
            await asyncio.sleep(float(ctx.arguments.get("sleep", 0.02)))
            return ctx.arguments.get("output", {"written": True})

        @activity("reserve")
        async def reserve(ctx: ActivityContext) -> dict[str, str]:
            return {"reservation": "r-1"}

        @reserve.compensate
        async def release_reservation(ctx: ActivityContext) -> None:
            return None

        @activity("charge")
        async def charge(ctx: ActivityContext) -> None:
            raise NonRetryableError(str(ctx.arguments.get("error", "card declined")))

        @activity("wait")
        async def wait(ctx: ActivityContext) -> str:
            await self.release.wait()
            return "released"

        return [fetch, think, write, reserve, charge, wait]

    async def __aenter__(self) -> World:
        await self.transport.connect()
        self._tasks = [
            asyncio.ensure_future(self.worker.run()),
            asyncio.ensure_future(self.monitor.run()),
        ]
        await asyncio.wait_for(self.monitor.ready.wait(), 10)
        await self.use_ledger_key(False)
        return self

    async def use_ledger_key(self, right: bool) -> None:
        """(Re)deploy the ledger worker with the right signing key, or with an outdated one."""
        if self._ledger is not None:
            worker, task = self._ledger
            worker.stop()
            await task

        @activity("ledger")
        async def ledger(ctx: ActivityContext) -> str:
            return "booked after the redrive"

        signer = self.signer if right else HmacSigner(b"an-outdated-key-" * 2, key_id="tests")
        worker = Worker(
            self.transport,
            [ledger],
            signer=signer,
            identity_provider=_AnyToken(),
            handle_signals=False,
            name="ledger-worker",
        )
        self._ledger = (worker, asyncio.ensure_future(worker.run()))
        await asyncio.wait_for(worker.ready.wait(), 10)

    async def __aexit__(self, *exc_info: object) -> None:
        self.release.set()
        await self.dispatcher.close()
        if self._ledger is not None:
            self._ledger[0].stop()
            self._tasks.append(self._ledger[1])
        self.worker.stop()
        self.monitor.stop()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.store.close()
        await self.transport.disconnect()

    async def dispatch(
        self,
        specs: list[ActivitySpec],
        *,
        variables: dict[str, Any] | None = None,
        correlation_id: str | None = None,
        obo_token: str | None = None,
    ) -> str:
        """Dispatch a monitored workflow; return its correlation id."""
        return await self.dispatcher.dispatch_workflow(
            specs, variables=variables, correlation_id=correlation_id, obo_token=obo_token
        )

    async def run(self, specs: list[ActivitySpec], **kwargs: Any) -> WorkflowRecord:
        """Dispatch a workflow and wait until the store holds it finished."""
        cid = await self.dispatch(specs, **kwargs)
        return await self.monitor.wait_recorded(cid, timeout=20)

    async def until_dead_lettered(self, queue: str, count: int = 1) -> None:
        """Wait until ``queue`` holds ``count`` dead letters."""
        for _ in range(400):
            if (await self.transport.stats(queue)).dead >= count:
                return
            await asyncio.sleep(0.025)
        raise AssertionError(f"{queue} never held {count} dead letter(s)")

    async def until_recorded(
        self, cid: str, predicate: Any, timeout: float = 10.0
    ) -> WorkflowRecord:
        """Wait until the store's record of ``cid`` satisfies ``predicate``."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            record = await self.store.get(cid)
            if record is not None and predicate(record):
                return record
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"workflow {cid} never got there: {record}")
            await asyncio.sleep(0.025)


def three_steps(
    *, text: str = "a thought", output: Any = None, fail_once: bool = False
) -> list[ActivitySpec]:
    """fetch → think → write, ``think`` failing once (then retried) when asked."""
    return [
        ActivitySpec(name="fetch", arguments={"rows": 3}),
        ActivitySpec(name="think", arguments={"text": text, "fail_once": fail_once}),
        ActivitySpec(name="write", arguments={"output": output or {"written": True}}),
    ]


@contextlib.asynccontextmanager
async def served(app: Starlette, root_path: str = "") -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn in this event loop on a kernel-chosen port; yield its URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    started = asyncio.Event()
    config = uvicorn.Config(
        app, log_config=None, lifespan="on", timeout_graceful_shutdown=5, root_path=root_path
    )
    server = DashboardServer(config, app.state.dashboard.hub, on_started=started.set)
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    try:
        await asyncio.wait_for(
            asyncio.wait(
                [task, asyncio.ensure_future(started.wait())], return_when="FIRST_COMPLETED"
            ),
            15,
        )
        if task.done():
            task.result()
            raise AssertionError("the dashboard stopped before it listened")
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)
        sock.close()


def require_chromium() -> None:
    """Skip (fail under CI=true) when Debian's chromium is not installed."""
    if os.path.exists(CHROMIUM):
        return
    reason = f"{CHROMIUM} is missing: apt-get install -y --no-install-recommends chromium"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (.ci/run installs it)")
    pytest.skip(reason)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def browser() -> AsyncIterator[Any]:
    """Headless Chromium (Debian's) through Playwright's async API, one per test module."""
    require_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_FLAGS, timeout=30_000
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the browser tests keep one screenshot per page (PAIGEANT_DASHBOARD_SCREENSHOTS)."""
    base = tmp_path_factory.getbasetemp()
    directory = Path(SCREENSHOTS_DIR) if SCREENSHOTS_DIR else base / "dashboard-screenshots"
    directory.mkdir(parents=True, exist_ok=True)
    return directory
