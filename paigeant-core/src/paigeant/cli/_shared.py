"""What the commands share: consoles, one-line errors, options, and opening transports and stores."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from ..errors import (
    ConfigurationError,
    PluginLoadError,
    StoreUnavailableError,
    TransportConnectionError,
)
from ..plugins import get_transport
from ..store.base import WorkflowStore
from ..store.choice import get_workflow_store
from ..transports.base import Transport

__all__ = [
    "JsonFlag",
    "LogLevelOption",
    "StoreOption",
    "TransportOption",
    "TransportOptions",
    "configure_logging",
    "console",
    "err_console",
    "error_line",
    "exit_code",
    "fail",
    "make_transport",
    "open_store",
    "parse_vars",
    "print_json",
    "quiet_library_logs",
    "refuse_in_memory",
    "serve_until_ready",
]

console = Console()
err_console = Console(stderr=True)

TransportOption = Annotated[
    str | None, typer.Option("--transport", help="Transport name (PAIGEANT_TRANSPORT).")
]
TransportOptions = Annotated[
    list[str] | None,
    typer.Option("--option", "-o", help="Transport option KEY=VALUE, e.g. url=redis://..."),
]
StoreOption = Annotated[
    str | None,
    typer.Option("--store", help="Workflow store name (PAIGEANT_STORE, default sqlite)."),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
LogLevelOption = Annotated[str, typer.Option(help="Logging level.")]


def error_line(message: str) -> None:
    """Print ``error: message`` on stderr as one line, however long (never wrapped)."""
    err_console.print(f"[red]error:[/red] {escape(' '.join(message.split()))}", soft_wrap=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` on stderr as one line and exit with ``code``.

    Exit codes (docs/cli.md): 2 for a usage or configuration error, 1 for something not
    found or not reachable.
    """
    error_line(message)
    raise typer.Exit(code)


def exit_code(exc: BaseException) -> int:
    """1 for something that cannot be reached (a store, a broker), 2 for a configuration error."""
    unreachable = (StoreUnavailableError, TransportConnectionError, ConnectionError, TimeoutError)
    return 1 if isinstance(exc, unreachable) else 2


def quiet_library_logs() -> None:
    """Keep library retry warnings (psycopg's pool) off a command's one-line errors."""
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)


def print_json(value: Any) -> None:
    """Print ``value`` as JSON on stdout, uncoloured, for scripts."""
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def parse_vars(pairs: list[str], flag: str = "--var") -> dict[str, Any]:
    """``KEY=VALUE`` pairs as a dict, values parsed as JSON when they are JSON."""
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


def make_transport(name: str | None, options: list[str] | None = None) -> Transport:
    """The transport ``name`` with ``-o`` options; an unknown one is a one-line error."""
    try:
        return get_transport(name, **parse_vars(options or [], flag="--option"))
    except (LookupError, TypeError, ValueError) as exc:
        fail(str(exc), 2)


def refuse_in_memory(transport: Transport, command: str) -> None:
    """Exit with a clear message when ``transport`` cannot reach other processes."""
    if not transport.crosses_processes:
        fail(
            f"`paigeant {command}` talks to other processes, but the "
            f"{type(transport).__name__} only reaches queues inside one process. Choose a "
            "broker transport with --transport or PAIGEANT_TRANSPORT (e.g. redis), or run "
            "the worker and dispatcher in one process (see guides/onboarding_example.py).",
            2,
        )


def configure_logging(level: str) -> None:
    """Log to stderr at ``level``."""
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def make_store(name: str | None, *, read_only: bool = False) -> WorkflowStore:
    """The workflow store ``name``; an unknown or misconfigured one is a one-line error.

    ``read_only``: for commands that only read (``WorkflowStore.read_only``): nothing is
    created, so a store no monitor has made is an error, and read-only files work.
    """
    if read_only:
        quiet_library_logs()
    try:
        store = get_workflow_store(name)
    except (LookupError, TypeError, ValueError, ConfigurationError, PluginLoadError) as exc:
        fail(str(exc), 2)
    store.read_only = read_only
    return store


@contextlib.asynccontextmanager
async def open_store(name: str | None) -> AsyncIterator[WorkflowStore]:
    """The workflow store connected to read; one that cannot be reached is one line (exit 1)."""
    store = make_store(name, read_only=True)
    try:
        await store.connect()
    except (StoreUnavailableError, ConfigurationError) as exc:
        fail(str(exc), exit_code(exc))
    try:
        yield store
    finally:
        await store.close()


async def serve_until_ready(
    run: Coroutine[Any, Any, None], ready: asyncio.Event, ready_line: Callable[[], str]
) -> None:
    """Run ``run``; once ``ready`` is set print ``ready_line()`` on stdout; wait for the end.

    The one line is for people and for the processes that start workers or monitors and wait
    for them; it is not printed when ``run`` ends (or fails) before it was ready.
    """
    running = asyncio.ensure_future(run)
    waiting = asyncio.ensure_future(ready.wait())
    try:
        await asyncio.wait([running, waiting], return_when=asyncio.FIRST_COMPLETED)
        if waiting.done():
            print(ready_line(), flush=True)
        await running
    finally:
        waiting.cancel()
        if not running.done():
            running.cancel()
