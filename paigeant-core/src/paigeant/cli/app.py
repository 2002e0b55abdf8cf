"""The ``paigeant`` command line: plugins, workers, dispatch and the demo."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Annotated

import typer
from rich.table import Table

from ..errors import PaigeantError
from ..plugins import core_version, list_plugins
from ..settings import env_str
from ..workflow.messages import ActivitySpec
from ._shared import (
    LogLevelOption,
    StoreOption,
    TransportOption,
    TransportOptions,
    console,
    error_line,
    exit_code,
    fail,
    make_store,
    serve_until_ready,
)
from ._shared import configure_logging as _configure_logging
from ._shared import make_transport as _transport
from ._shared import parse_vars as _parse_vars
from ._shared import refuse_in_memory as _refuse_in_memory
from .dashboard import dashboard as dashboard_command
from .operations import dead_letters_app, queues
from .workflows import workflows_app

__all__ = ["MONITOR_READY_PREFIX", "READY_PREFIX", "app", "main"]

#: First word of the line ``paigeant worker`` prints on stdout once it consumes its queues.
READY_PREFIX = "paigeant-worker-ready"
#: First word of the line ``paigeant monitor`` prints on stdout once it records events.
MONITOR_READY_PREFIX = "paigeant-monitor-ready"

app = typer.Typer(
    name="paigeant",
    help="Durable workflow orchestration for AI agents.",
    no_args_is_help=True,
    add_completion=False,
)


def _version_callback(value: bool) -> None:
    if value:
        console.print(f"paigeant {core_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Show the version."
        ),
    ] = False,
) -> None:
    """Durable workflow orchestration for AI agents."""


@app.command()
def plugins() -> None:
    """List installed plugins, their distributions and what they register."""
    table = Table(title="paigeant plugins")
    for column in ("plugin", "distribution", "version", "registers"):
        table.add_column(column)
    for info in list_plugins():
        table.add_row(info.name, info.distribution, info.version, "\n".join(info.registers))
    console.print(table)


@app.command()
def worker(
    targets: Annotated[list[str], typer.Argument(help="MODULE or MODULE:ATTR holding activities.")],
    transport: TransportOption = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Steps run at once.")] = 10,
    option: TransportOptions = None,
    log_level: LogLevelOption = "INFO",
) -> None:
    """Run a worker for the activities found in MODULE[:ATTR] until SIGTERM or Ctrl-C."""
    from ..runtime.loader import load_activities
    from ..runtime.worker import Worker

    _configure_logging(log_level)
    chosen = _transport(transport, option)
    _refuse_in_memory(chosen, "worker")
    try:
        activities = [act for target in targets for act in load_activities(target)]
    except ImportError as exc:
        fail(str(exc), 2)
    runner = Worker(chosen, activities, concurrency=concurrency)
    transport_name = transport or env_str("PAIGEANT_TRANSPORT") or "inmemory"

    async def serve() -> None:
        async with chosen:
            await serve_until_ready(
                runner.run(),
                runner.ready,
                lambda: (
                    f"{READY_PREFIX} worker={runner.name} transport={transport_name} "
                    f"queues={','.join(runner.queues)}"
                ),
            )

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


@app.command()
def dispatch(
    activities: Annotated[list[str], typer.Argument(help="Activity names, in order.")],
    var: Annotated[
        list[str] | None, typer.Option(help="Workflow variable KEY=VALUE (JSON values allowed).")
    ] = None,
    wait: Annotated[bool, typer.Option(help="Wait for the result and show it.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait with --wait.")] = 60.0,
    transport: TransportOption = None,
    option: TransportOptions = None,
    monitor: Annotated[
        bool | None,
        typer.Option(
            "--monitor/--no-monitor",
            help="Send its events to the monitor queue (default: PAIGEANT_MONITOR).",
        ),
    ] = None,
) -> None:
    """Dispatch a workflow of ACTIVITY... and print its correlation id (and result with --wait)."""
    from ..runtime.dispatcher import WorkflowDispatcher

    variables = _parse_vars(var or [])
    try:
        specs = [ActivitySpec(name=name) for name in activities]
    except ValueError as exc:
        fail(str(exc), 2)
    chosen = _transport(transport, option)
    _refuse_in_memory(chosen, "dispatch")

    async def run() -> int:
        async with chosen:
            dispatcher = WorkflowDispatcher(chosen, monitor=monitor)
            try:
                # Without --wait nobody reads the result: no reply queue is made for it.
                cid = await dispatcher.dispatch_workflow(specs, variables=variables, results=wait)
                console.print(f"Workflow dispatched: {cid}")
                if not wait:
                    return 0
                try:
                    result = await dispatcher.wait_for(cid, timeout=timeout)
                except TimeoutError as exc:
                    error_line(str(exc))
                    return 1
                console.print_json(result.model_dump_json())
                return 0 if result.status == "completed" else 1
            finally:
                await dispatcher.close()

    raise typer.Exit(asyncio.run(run()))


@app.command()
def monitor(
    transport: TransportOption = None,
    option: TransportOptions = None,
    store: StoreOption = None,
    batch_size: Annotated[
        int, typer.Option(min=1, help="Most events per store transaction.")
    ] = 200,
    log_level: LogLevelOption = "INFO",
) -> None:
    """Record the events of monitored workflows in the workflow store until SIGTERM or Ctrl-C."""
    from ..store.monitor import Monitor
    from ..transports.queues import monitor_queue

    _configure_logging(log_level)
    chosen = _transport(transport, option)
    _refuse_in_memory(chosen, "monitor")
    opened = make_store(store)
    recorder = Monitor(chosen, opened, batch_size=batch_size)
    transport_name = transport or env_str("PAIGEANT_TRANSPORT") or "inmemory"

    async def serve() -> None:
        try:
            await opened.connect()
        except PaigeantError as exc:
            fail(str(exc), exit_code(exc))
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGTERM, recorder.stop)
        try:
            async with chosen:
                await serve_until_ready(
                    recorder.run(),
                    recorder.ready,
                    lambda: (
                        f"{MONITOR_READY_PREFIX} queue={monitor_queue()} "
                        f"transport={transport_name} store={opened.name}"
                    ),
                )
        finally:
            await opened.close()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


app.add_typer(workflows_app)
app.add_typer(dead_letters_app)
app.command()(queues)
app.command("dashboard")(dashboard_command)


@app.command()
def demo(
    transport: Annotated[
        str | None, typer.Option(help="Run workers as separate processes on this transport.")
    ] = None,
) -> None:
    """Run the three-agent demo workflow (offline, in-memory by default)."""
    from .demo import run_demo

    run_demo(transport)


def main() -> None:
    """Entry point of the ``paigeant`` script: errors are one clear line, not a traceback.

    Exit status 1 for a store or broker that cannot be reached, 2 for any other paigeant
    error (configuration, a missing key...), as docs/cli.md says.
    """
    try:
        app()
    except PaigeantError as exc:
        error_line(f"{type(exc).__name__}: {exc}")
        raise SystemExit(exit_code(exc)) from None
