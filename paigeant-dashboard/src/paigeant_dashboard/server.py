"""Running the dashboard under uvicorn: ``serve(...)``, what ``paigeant dashboard`` calls."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Callable

import uvicorn

from paigeant import Transport, WorkflowStore

from .app import create_app
from .live import Hub
from .settings import DashboardSettings

__all__ = ["DashboardServer", "bind_socket", "is_loopback", "serve", "url_of"]

logger = logging.getLogger(__name__)


class DashboardServer(uvicorn.Server):
    """uvicorn's server that ends the open event streams first, so it stops at once.

    uvicorn waits for running responses before its lifespan shutdown, and an event stream runs
    until the page closes: without this, stopping would wait for every open tab.
    """

    def __init__(
        self, config: uvicorn.Config, hub: Hub, on_started: Callable[[], None] | None = None
    ) -> None:
        """Serve ``config``'s app, whose live updates come from ``hub``; ``on_started()`` once up."""
        super().__init__(config)
        self.hub = hub
        self.on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start as uvicorn does, then call ``on_started`` if it listens."""
        await super().startup(sockets)
        if self.started and self.on_started is not None:
            self.on_started()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Close every event stream, then shut down as uvicorn does."""
        self.hub.close()
        await super().shutdown(sockets)


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host``:``port`` (0: a free port), ready for uvicorn."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def url_of(sock: socket.socket) -> str:
    """``http://host:port/`` for a bound socket (``[...]`` around IPv6 addresses)."""
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1" if host == "0.0.0.0" else "::1"
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def serve(
    store: WorkflowStore,
    transport: Transport | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    settings: DashboardSettings | None = None,
    transport_note: str | None = None,
    log_level: str = "info",
    ready: Callable[[str], None] | None = None,
    warn: Callable[[str], None] | None = None,
) -> None:
    """Serve the dashboard on ``host``:``port`` until SIGINT or SIGTERM.

    ``ready(url)`` is called once it listens. Binding anything but loopback gives a warning
    (to ``warn``, else the log): the dashboard then answers to the network.
    """
    chosen = settings or DashboardSettings.load(bind_host=host)
    app = create_app(
        store, transport, settings=chosen, transport_note=transport_note, owns_transport=True
    )
    sock = bind_socket(host, port)
    if not is_loopback(host):
        message = (
            f"the dashboard listens on {host}, not only on loopback: anyone who can reach it "
            "sees your workflows"
            + ("" if chosen.token else " (set PAIGEANT_DASHBOARD_TOKEN to require a token)")
        )
        (warn or logger.warning)(message)
    config = uvicorn.Config(
        app,
        log_level=log_level,
        lifespan="on",
        root_path=chosen.root_path,
        server_header=False,
        timeout_graceful_shutdown=5,
    )
    url = url_of(sock)
    server = DashboardServer(
        config, app.state.dashboard.hub, on_started=(lambda: ready(url)) if ready else None
    )
    try:
        asyncio.run(server.serve(sockets=[sock]))
    finally:
        sock.close()
