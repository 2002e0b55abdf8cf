"""The ``paigeant`` command line: plugins, workers, dispatch and the demo."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..errors import PaigeantError
from ..plugins import core_version, get_transport, list_plugins
from ..settings import env_str
from ..transports.base import Transport
from ..workflow.messages import ActivitySpec

__all__ = ["READY_PREFIX", "app", "main"]

#: First word of the line ``paigeant worker`` prints on stdout once it consumes its queues.
READY_PREFIX = "paigeant-worker-ready"

app = typer.Typer(
    name="paigeant",
    help="Durable workflow orchestration for AI agents.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)


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


def _transport(name: str | None, options: list[str] | None = None) -> Transport:
    try:
        return get_transport(name, **_parse_vars(options or [], flag="--option"))
    except (LookupError, TypeError, ValueError) as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None


def _refuse_in_memory(transport: Transport, command: str) -> None:
    if not transport.crosses_processes:
        err_console.print(
            f"[red]error:[/red] `paigeant {command}` talks to other processes, but the "
            f"{type(transport).__name__} only reaches queues inside one process. Choose a "
            "broker transport with --transport or PAIGEANT_TRANSPORT (e.g. redis), or run "
            "the worker and dispatcher in one process (see guides/onboarding_example.py)."
        )
        raise typer.Exit(2)


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


@app.command()
def worker(
    targets: Annotated[list[str], typer.Argument(help="MODULE or MODULE:ATTR holding activities.")],
    transport: Annotated[
        str | None, typer.Option(help="Transport name (PAIGEANT_TRANSPORT).")
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Steps run at once.")] = 10,
    option: Annotated[
        list[str] | None,
        typer.Option(
            "--option", "-o", help="Transport option KEY=VALUE, e.g. visibility_timeout=60."
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="Logging level.")] = "INFO",
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
        err_console.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
    runner = Worker(chosen, activities, concurrency=concurrency)
    transport_name = transport or env_str("PAIGEANT_TRANSPORT") or "inmemory"

    async def serve() -> None:
        async with chosen:
            running = asyncio.ensure_future(runner.run())
            ready = asyncio.ensure_future(runner.ready.wait())
            await asyncio.wait([running, ready], return_when=asyncio.FIRST_COMPLETED)
            if ready.done():
                # One line, for people and for the processes that start workers and wait.
                print(
                    f"{READY_PREFIX} worker={runner.name} transport={transport_name} "
                    f"queues={','.join(runner.queues)}",
                    flush=True,
                )
            else:
                ready.cancel()
            await running

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


def _parse_vars(pairs: list[str], flag: str = "--var") -> dict[str, Any]:
    variables: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{flag} takes KEY=VALUE, got {pair!r}")
        try:
            variables[key] = json.loads(raw)
        except ValueError:
            variables[key] = raw
    return variables


@app.command()
def dispatch(
    activities: Annotated[list[str], typer.Argument(help="Activity names, in order.")],
    var: Annotated[
        list[str] | None, typer.Option(help="Workflow variable KEY=VALUE (JSON values allowed).")
    ] = None,
    wait: Annotated[bool, typer.Option(help="Wait for the result and show it.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait with --wait.")] = 60.0,
    transport: Annotated[
        str | None, typer.Option(help="Transport name (PAIGEANT_TRANSPORT).")
    ] = None,
    option: Annotated[
        list[str] | None,
        typer.Option("--option", "-o", help="Transport option KEY=VALUE, e.g. url=redis://..."),
    ] = None,
) -> None:
    """Dispatch a workflow of ACTIVITY... and print its correlation id (and result with --wait)."""
    from ..runtime.dispatcher import WorkflowDispatcher

    variables = _parse_vars(var or [])
    try:
        specs = [ActivitySpec(name=name) for name in activities]
    except ValueError as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
    chosen = _transport(transport, option)
    _refuse_in_memory(chosen, "dispatch")

    async def run() -> int:
        async with chosen:
            dispatcher = WorkflowDispatcher(chosen)
            try:
                cid = await dispatcher.dispatch_workflow(specs, variables=variables)
                console.print(f"Workflow dispatched: {cid}")
                if not wait:
                    return 0
                try:
                    result = await dispatcher.wait_for(cid, timeout=timeout)
                except TimeoutError as exc:
                    err_console.print(f"[red]error:[/red] {escape(str(exc))}")
                    return 1
                console.print_json(result.model_dump_json())
                return 0 if result.status == "completed" else 1
            finally:
                await dispatcher.close()

    raise typer.Exit(asyncio.run(run()))


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
    """Entry point of the ``paigeant`` script: errors are one clear line, not a traceback."""
    try:
        app()
    except PaigeantError as exc:
        err_console.print(f"[red]error:[/red] {type(exc).__name__}: {escape(str(exc))}")
        raise SystemExit(2) from None
