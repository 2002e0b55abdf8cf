"""What every view shares: the store feed, the transport, the settings, links and page rendering."""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import urlencode

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse

from paigeant import Transport, TransportConnectionError, WorkflowStore

from .live import Hub, StoreFeed
from .render import path_segment
from .security import csrf_token
from .settings import DashboardSettings

__all__ = ["Dashboard", "TransportDownError", "dashboard_of"]

logger = logging.getLogger(__name__)


class TransportDownError(Exception):
    """The transport cannot be used for queues and dead letters; the message says why."""


class Dashboard:
    """The state of one dashboard app (``request.app.state.dashboard``)."""

    def __init__(
        self,
        *,
        store: WorkflowStore,
        transport: Transport | None,
        transport_note: str | None,
        settings: DashboardSettings,
        env: jinja2.Environment,
        owns_transport: bool = False,
    ) -> None:
        """Serve ``store`` (and ``transport``'s queues, when given) with ``settings``.

        With ``owns_transport`` the transport is disconnected when the app stops (it is
        connected on first use either way; ``connect()`` is idempotent).
        """
        self.settings = settings
        self.hub = Hub()
        self.feed = StoreFeed(store, self.hub)
        self.transport = transport
        self.transport_note = transport_note
        self.env = env
        self._transport_ready = False
        self._transport_lock = asyncio.Lock()
        self._owns_transport = owns_transport

    def store(self) -> WorkflowStore:
        """The connected store, or StoreDownError (rendered as an error page)."""
        return self.feed.require()

    async def queue_transport(self) -> Transport:
        """The transport for queues and dead letters, connected on first use."""
        if self.transport is None:
            raise TransportDownError(self.transport_note or "no transport is configured")
        async with self._transport_lock:
            if not self._transport_ready:
                try:
                    await self.transport.connect()
                except (TransportConnectionError, OSError) as exc:
                    raise TransportDownError(
                        f"cannot reach the {type(self.transport).__name__}: {exc}"
                    ) from None
                self._transport_ready = True
        return self.transport

    async def close(self) -> None:
        """Stop watching, close the store (and the transport, when the app owns it)."""
        self.hub.close()
        await self.feed.stop()
        if self._owns_transport and self._transport_ready and self.transport is not None:
            await self.transport.disconnect()

    # -- links and pages ---------------------------------------------------------------------

    @staticmethod
    def url(request: Request, name: str, query: dict[str, Any] | None = None, **params: str) -> str:
        """The path of route ``name`` (under the proxy's root path), its params percent-encoded."""
        path = request.app.url_path_for(
            name, **{key: path_segment(value) for key, value in params.items()}
        )
        pairs = [(k, v) for k, v in (query or {}).items() if v not in (None, "", [])]
        flat = [(k, item) for k, v in pairs for item in (v if isinstance(v, list) else [v])]
        root: str = request.scope.get("root_path", "")
        return root + str(path) + (f"?{urlencode(flat)}" if flat else "")

    def page(
        self, request: Request, template: str, *, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        """Render ``template`` with the context every page has."""
        context.setdefault("nav", "")
        has_session = "session" in request.scope  # not for errors caught outside the middleware
        html = self.env.get_template(template).render(
            url=lambda name, query=None, **params: self.url(request, name, query, **params),
            static=lambda name: f"{request.scope.get('root_path', '')}/static/{name}",
            csrf_token=csrf_token(request) if has_session else "",
            token_required=self.settings.token is not None,
            logged_in=has_session and request.session.get("auth") is True,
            store_name=self.feed.store.describe(),
            **context,
        )
        return HTMLResponse(html, status_code=status_code)


def dashboard_of(request: Request) -> Dashboard:
    """The Dashboard serving ``request``."""
    dashboard: Dashboard = request.app.state.dashboard
    return dashboard
