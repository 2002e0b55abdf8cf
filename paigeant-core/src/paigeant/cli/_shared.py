"""What the commands share: consoles, one-line errors, options, and opening transports and stores."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from ..errors import ConfigurationError, PluginLoadError, StoreUnavailableError
from ..plugins import get_transport
from ..store.base import WorkflowStore
from ..store.choice import get_workflow_store
from ..transports.base import Transport

__all__ = [
    "JsonFlag",
    "StoreOption",
    "TransportOption",
    "TransportOptions",
    "configure_logging",
    "console",
    "err_console",
    "fail",
    "make_transport",
    "open_store",
    "parse_vars",
    "print_json",
    "refuse_in_memory",
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


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` on stderr as one line and exit with ``code``."""
    err_console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code)


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


def make_store(name: str | None) -> WorkflowStore:
    """The workflow store ``name``; an unknown or misconfigured one is a one-line error."""
    try:
        return get_workflow_store(name)
    except (LookupError, TypeError, ValueError, ConfigurationError, PluginLoadError) as exc:
        fail(str(exc), 2)


@contextlib.asynccontextmanager
async def open_store(name: str | None) -> AsyncIterator[WorkflowStore]:
    """The connected workflow store; one that cannot be reached is a one-line error (exit 1)."""
    store = make_store(name)
    try:
        await store.connect()
    except StoreUnavailableError as exc:
        fail(str(exc))
    try:
        yield store
    finally:
        await store.close()
