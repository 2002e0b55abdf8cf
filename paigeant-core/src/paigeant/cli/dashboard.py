"""``paigeant dashboard``: serve the web dashboard (package ``paigeant-dashboard``, loaded lazily).

Core never imports the dashboard (nor Starlette or uvicorn): only this command does, when run.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from ..errors import ConfigurationError
from ..settings import env_int, env_str
from ._shared import (
    StoreOption,
    TransportOption,
    TransportOptions,
    configure_logging,
    err_console,
    fail,
    make_store,
    make_transport,
)

__all__ = ["DASHBOARD_INSTALL_HINT", "dashboard"]

#: What to install when the dashboard package is missing.
DASHBOARD_INSTALL_HINT = (
    "the dashboard is a separate package: pip install paigeant-dashboard "
    "(or pip install 'paigeant[dashboard]')"
)

_IN_MEMORY_NOTE = (
    "The dashboard runs with the in-memory transport, whose queues live inside one process: "
    "there are no queues or dead letters here to show. Start it with --transport NAME (or "
    "PAIGEANT_TRANSPORT), e.g. redis, to see your broker's."
)


def dashboard(
    host: Annotated[
        str | None,
        typer.Option(help="Address to listen on (PAIGEANT_DASHBOARD_HOST, default 127.0.0.1)."),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            min=0, max=65535, help="Port (PAIGEANT_DASHBOARD_PORT, default 8765; 0: any free)."
        ),
    ] = None,
    store: StoreOption = None,
    transport: TransportOption = None,
    option: TransportOptions = None,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-host",
            help="Host name users reach it by, e.g. behind a proxy (PAIGEANT_DASHBOARD_ALLOWED_HOSTS).",
        ),
    ] = None,
    root_path: Annotated[
        str | None,
        typer.Option(
            help="Sub-path a reverse proxy serves it under (PAIGEANT_DASHBOARD_ROOT_PATH)."
        ),
    ] = None,
    trace_url: Annotated[
        str | None,
        typer.Option(
            help="Tracing tool link with {trace_id} in it (PAIGEANT_DASHBOARD_TRACE_URL)."
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="Logging level.")] = "INFO",
) -> None:
    """Serve the web dashboard over the workflow store and print its URL (Ctrl-C stops it)."""
    try:
        from paigeant_dashboard import DashboardSettings, serve
    except ImportError:
        fail(DASHBOARD_INSTALL_HINT, 2)
    configure_logging(log_level)
    chosen_host = host or env_str("PAIGEANT_DASHBOARD_HOST") or "127.0.0.1"
    chosen_port = port if port is not None else env_int("PAIGEANT_DASHBOARD_PORT", 8765)
    try:
        settings = DashboardSettings.load(
            allowed_hosts=allowed_host,
            root_path=root_path,
            trace_url=trace_url,
            bind_host=chosen_host,
        )
    except ConfigurationError as exc:
        fail(str(exc), 2)
    opened = make_store(store, read_only=True)  # the dashboard only reads the store
    chosen = make_transport(transport, option)
    crosses = chosen.crosses_processes

    def ready(url: str) -> None:
        print(f"Dashboard running at {url} (Ctrl-C to stop)", flush=True)

    def warn(message: str) -> None:
        err_console.print(f"[yellow]warning:[/yellow] {escape(message)}", soft_wrap=True)

    try:
        serve(
            opened,
            chosen if crosses else None,
            host=chosen_host,
            port=chosen_port,
            settings=settings,
            transport_note=None if crosses else _IN_MEMORY_NOTE,
            log_level=log_level.lower(),
            ready=ready,
            warn=warn,
        )
    except OSError as exc:
        fail(f"cannot listen on {chosen_host}:{chosen_port}: {exc} (choose another with --port)")
    except KeyboardInterrupt:
        pass
