"""``paigeant demo``: three agents in turn, with a live view of each step, offline by default."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from pydantic_core import to_jsonable_python
from rich.console import Console
from rich.live import Live
from rich.panel import Panel
from rich.pretty import Pretty
from rich.table import Table
from rich.text import Text

from ..agents import PaigeantAgent
from ..errors import PaigeantError
from ..plugins import get_transport
from ..runtime.dispatcher import WorkflowDispatcher
from ..runtime.worker import Worker
from ..settings import namespace
from ..store.base import WorkflowStore
from ..store.choice import get_workflow_store
from ..store.monitor import Monitor
from ..store.records import WorkflowRecord
from ..transports.base import Transport
from ..workflow.events import EventType, WorkflowEvent, WorkflowResult
from ..workflow.messages import EVERY_EVENT, ActivitySpec, Subscription
from .app import READY_PREFIX

__all__ = ["DemoRun", "StepView", "WorkflowView", "demo_workflow", "run_demo"]

logger = logging.getLogger(__name__)

_STYLES = {"pending": "dim", "running": "yellow", "completed": "green", "faulted": "red"}


@dataclass
class StepView:
    """One row of the live view: an agent, its status, duration and worker."""

    agent: str
    status: str = "pending"
    duration: float | None = None
    worker: str = ""


@dataclass
class WorkflowView:
    """The live table of a workflow's steps, updated from its events."""

    steps: list[StepView]
    correlation_id: str = ""
    events: list[WorkflowEvent] = field(default_factory=list)

    @classmethod
    def for_agents(cls, agents: Sequence[str]) -> WorkflowView:
        """A view of ``agents`` in order, all pending."""
        return cls([StepView(name) for name in agents])

    def start(self, correlation_id: str) -> None:
        """Mark the workflow dispatched: its first step is running."""
        self.correlation_id = correlation_id
        self._run_next()

    def _run_next(self) -> None:
        for step in self.steps:
            if step.status == "pending":
                step.status = "running"
                return

    def apply(self, event: WorkflowEvent) -> None:
        """Update the steps from one workflow event."""
        self.events.append(event)
        step = next(
            (s for s in self.steps if s.agent == event.activity and s.status == "running"), None
        )
        if event.type == EventType.ACTIVITY_COMPLETED and step is not None:
            step.status, step.duration, step.worker = (
                "completed",
                event.duration,
                event.worker or "",
            )
            self._run_next()
        elif event.type == EventType.ACTIVITY_FAULTED and step is not None:
            step.status, step.worker = "faulted", event.worker or ""

    def render(self) -> Table:
        """The table of steps: agent, status, duration, worker."""
        title = f"workflow {self.correlation_id}" if self.correlation_id else "workflow"
        table = Table(title=title, title_justify="left")
        table.add_column("#", justify="right")
        table.add_column("agent")
        table.add_column("status")
        table.add_column("duration", justify="right")
        table.add_column("worker")
        for index, step in enumerate(self.steps, 1):
            duration = f"{step.duration:.3f}s" if step.duration is not None else ""
            status = Text(step.status, style=_STYLES.get(step.status, ""))
            table.add_row(str(index), step.agent, status, duration, step.worker)
        return table


@dataclass
class DemoRun:
    """What a demo run produced: its result, how long it took, and its record in the store."""

    result: WorkflowResult
    elapsed: float
    view: WorkflowView
    record: WorkflowRecord | None = None
    where: str = ""


async def _read_ready(process: asyncio.subprocess.Process, agent: str, timeout: float) -> None:
    """Wait for the worker process to print its ready line."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while True:
        try:
            line = await asyncio.wait_for(process.stdout.readline(), deadline - time.monotonic())
        except TimeoutError:
            raise PaigeantError(
                f"the worker for {agent} did not start within {timeout:.0f}s"
            ) from None
        if not line:
            raise PaigeantError(f"the worker for {agent} exited with code {await process.wait()}")
        if line.decode(errors="replace").startswith(READY_PREFIX):
            return


def _tail(log: IO[bytes]) -> str:
    log.seek(0)
    return log.read().decode(errors="replace").strip()[-2000:]


@contextlib.asynccontextmanager
async def _worker_processes(
    targets: Mapping[str, str], transport_name: str | None, timeout: float
) -> AsyncIterator[list[asyncio.subprocess.Process]]:
    """One ``paigeant worker MODULE:ATTR`` process per agent (name -> target), stopped with SIGTERM."""
    processes: list[asyncio.subprocess.Process] = []
    logs: list[IO[bytes]] = []
    args = ["--transport", transport_name] if transport_name else []
    with contextlib.ExitStack() as files:
        try:
            for target in targets.values():
                log = files.enter_context(tempfile.TemporaryFile())
                logs.append(log)
                processes.append(
                    await asyncio.create_subprocess_exec(
                        sys.executable,
                        "-m",
                        "paigeant",
                        "worker",
                        target,
                        *args,
                        stdout=asyncio.subprocess.PIPE,
                        stderr=log,
                        env=os.environ.copy(),
                    )
                )
            for agent, process, worker_log in zip(targets, processes, logs, strict=True):
                try:
                    await _read_ready(process, agent, timeout)
                except PaigeantError as exc:
                    raise PaigeantError(f"{exc}; its log:\n{_tail(worker_log)}") from None
            yield processes
        finally:
            await _stop(processes)


async def _stop(processes: list[asyncio.subprocess.Process]) -> None:
    """SIGTERM each worker process (they drain and exit); kill those that do not in time."""
    for process in processes:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            await asyncio.wait_for(process.wait(), 15)
        except TimeoutError:
            logger.warning("worker process %d did not stop; killing it", process.pid)
            process.kill()
            await process.wait()


@contextlib.asynccontextmanager
async def _in_process_workers(
    transport: Transport, agents: Sequence[PaigeantAgent[Any, Any]]
) -> AsyncIterator[None]:
    """One in-process Worker per agent, stopped and drained afterwards."""
    workers = [
        Worker(transport, [agent], name=f"{agent.activity_name}@in-process") for agent in agents
    ]
    tasks = [asyncio.ensure_future(worker.run()) for worker in workers]
    try:
        await asyncio.gather(*(worker.ready.wait() for worker in workers))
        yield
    finally:
        for worker in workers:
            worker.stop()
        _done, pending = await asyncio.wait(tasks, timeout=10)
        for task in pending:
            task.cancel()


async def demo_workflow(
    transport: Transport,
    *,
    transport_name: str | None = None,
    prompt: str | None = None,
    live: Live | None = None,
    view: WorkflowView | None = None,
    timeout: float = 120.0,
    store: WorkflowStore | None = None,
) -> DemoRun:
    """Run the demo workflow on ``transport``: in-process workers, or one process per agent.

    With ``store``, an in-process monitor records the workflow there (on a queue of its own, so
    a monitor running elsewhere does not take its events).
    """
    from . import demo_agents

    view = view or WorkflowView.for_agents(demo_agents.AGENT_NAMES)

    def on_event(event: WorkflowEvent) -> None:
        view.apply(event)
        if live is not None:
            live.update(view.render())

    monitor_queue = f"{namespace()}.demo-monitor.{uuid.uuid4().hex[:12]}"
    subscriptions = [Subscription(queue=monitor_queue, events=[EVERY_EVENT])] if store else []
    dispatcher = WorkflowDispatcher(
        transport,
        on_event=on_event,
        subscriptions=subscriptions,
        monitor=False,
        name="paigeant demo",
    )
    _ = dispatcher.wire  # fail fast on a missing signing key, before starting anything
    monitor: Monitor | None = None
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(transport)
        stack.push_async_callback(dispatcher.close)
        if store is not None:
            monitor = await stack.enter_async_context(
                _in_process_monitor(transport, store, monitor_queue)
            )
        if transport.crosses_processes:
            await stack.enter_async_context(
                _worker_processes(demo_agents.WORKER_TARGETS, transport_name, 60.0)
            )
        else:
            await stack.enter_async_context(_in_process_workers(transport, demo_agents.AGENTS))
        started = time.perf_counter()
        correlation_id = await dispatcher.dispatch_workflow(
            [
                ActivitySpec(name="input-agent", prompt=prompt or demo_agents.DEFAULT_PROMPT),
                ActivitySpec(name="enrichment-agent"),
                ActivitySpec(name="output-agent"),
            ]
        )
        view.start(correlation_id)
        if live is not None:
            live.update(view.render())
        try:
            result = await dispatcher.wait_for(correlation_id, timeout=timeout)
        except TimeoutError as exc:
            raise PaigeantError(str(exc)) from None
        elapsed = time.perf_counter() - started
        record = None
        if monitor is not None:
            try:
                record = await monitor.wait_recorded(correlation_id, timeout=15)
            except TimeoutError as exc:
                logger.warning("the demo workflow was not recorded: %s", exc)
    return DemoRun(result, elapsed, view, record)


@contextlib.asynccontextmanager
async def _in_process_monitor(
    transport: Transport, store: WorkflowStore, queue: str
) -> AsyncIterator[Monitor]:
    """A Monitor recording ``queue`` into ``store`` while the block runs; its queue deleted after."""
    monitor = Monitor(transport, store, queue=queue)
    task = asyncio.ensure_future(monitor.run())
    try:
        await monitor.ready.wait()
        yield monitor
    finally:
        monitor.stop()
        _done, pending = await asyncio.wait([task], timeout=10)
        for late in pending:
            late.cancel()
        with contextlib.suppress(Exception):
            await transport.delete_queue(queue)


async def _recorded_demo(transport: Transport, **options: Any) -> DemoRun:
    """The demo with a monitor on the workflow store (``PAIGEANT_STORE``, default sqlite).

    A store that cannot be opened is reported and the demo runs unrecorded.
    """
    store = get_workflow_store()
    try:
        await store.connect()
    except PaigeantError as exc:
        logger.warning("the demo runs without recording it: %s", exc)
        return await demo_workflow(transport, **options)
    try:
        run = await demo_workflow(transport, store=store, **options)
        run.where = store.describe()
        return run
    finally:
        await store.close()


def _print_outcome(console: Console, run: DemoRun) -> None:
    result = run.result
    if result.status == "completed":
        output = result.output
        body: Any = output if isinstance(output, str) else Pretty(to_jsonable_python(output))
        console.print(Panel(body, title="final output", title_align="left", border_style="green"))
    else:
        console.print(Panel(str(result.error or result.reason), title=result.status, style="red"))
    console.print(f"total time: {run.elapsed:.3f}s")
    console.print(f"correlation id: {result.correlation_id}")


def _signing_configured() -> bool:
    """Whether the environment already chooses a signer or key."""
    names = ("PAIGEANT_SIGNER", "PAIGEANT_SIGNING_KEY", "PAIGEANT_SIGNING_PRIVATE_KEY")
    return any(os.environ.get(name, "").strip() for name in names)


def run_demo(
    transport: str | None = None,
    *,
    prompt: str | None = None,
    console: Console | None = None,
) -> None:
    """Run the three-agent demo with a live view; ``transport`` as in ``get_transport``.

    On the in-memory default everything runs in this process, offline. With a transport that
    crosses processes, each agent gets its own worker process for the run.
    """
    console = console or Console()
    chosen = get_transport(transport)
    from ..agents.model import MODEL_ENV
    from ..settings import env_str
    from . import demo_agents  # builds the agents: a misconfigured PAIGEANT_MODEL fails here

    where = "a worker process per agent" if chosen.crosses_processes else "in-process workers"
    model = env_str(MODEL_ENV) or "offline"
    console.print(
        f"[bold]paigeant demo[/bold] on {type(chosen).__name__} ({where}); model: {model}"
    )
    if chosen.crosses_processes and not _signing_configured():
        # The demo starts every worker itself, so a one-off key shared with them is safe.
        os.environ["PAIGEANT_SIGNING_KEY"] = secrets.token_hex(32)
        console.print(
            "[dim]no signing key configured: using a one-off key shared with the demo's own "
            "worker processes (set PAIGEANT_SIGNING_KEY for workers you start yourself)[/dim]"
        )
    view = WorkflowView.for_agents(demo_agents.AGENT_NAMES)
    with Live(view.render(), console=console, refresh_per_second=12) as live:
        run = asyncio.run(
            _recorded_demo(chosen, transport_name=transport, prompt=prompt, live=live, view=view)
        )
        live.update(view.render())
    console.print()
    _print_outcome(console, run)
    if run.record is not None:
        console.print(
            f"recorded in {run.where}; see it with: paigeant workflows show {run.record.correlation_id}",
            highlight=False,
        )
    if run.result.status != "completed":
        raise PaigeantError(f"the demo workflow {run.result.status}: {run.result.error}")
