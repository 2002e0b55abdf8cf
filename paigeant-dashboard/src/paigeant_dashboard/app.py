"""``create_app``: the dashboard as a Starlette app over a workflow store (and a transport)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from paigeant import PaigeantError, Transport, WorkflowStore

from .context import Dashboard, TransportDownError, dashboard_of
from .live import StoreDownError
from .render import make_environment
from .security import SESSION_COOKIE, HostCheck, SecurityHeaders, TokenGate, session_secret
from .settings import DashboardSettings
from .views.auth import login, logout
from .views.events import events
from .views.queues import confirm_redrive, dead_letters_page, queues_page, redrive
from .views.workflows import home, trace_page, workflow_page, workflows_page

__all__ = ["create_app"]

logger = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
_SESSION_HOURS = 12

_TITLES = {
    400: "Bad request",
    401: "Not logged in",
    403: "Refused",
    404: "Not found",
    405: "Method not allowed",
    503: "Unavailable",
}


def create_app(
    store: WorkflowStore,
    transport: Transport | None = None,
    *,
    settings: DashboardSettings | None = None,
    transport_note: str | None = None,
    owns_transport: bool = False,
) -> Starlette:
    """The dashboard over ``store``; with ``transport``, its queues and dead letters too.

    The app connects the store when it starts (and keeps retrying while it is unreachable,
    showing why on every page) and closes it when it stops. ``transport`` is connected on
    first use of the queues pages (and disconnected when the app stops if ``owns_transport``);
    without one, those pages say ``transport_note``.
    """
    chosen = settings or DashboardSettings.load()
    dashboard = Dashboard(
        store=store,
        transport=transport,
        transport_note=transport_note
        or "No transport was given to the dashboard, so it cannot show queues.",
        settings=chosen,
        env=make_environment(),
        owns_transport=owns_transport,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await dashboard.feed.start()
        try:
            yield
        finally:
            await dashboard.close()

    app = Starlette(
        routes=[
            Route("/", home, name="home"),
            Route("/workflows", workflows_page, name="workflows"),
            Route("/workflows/{correlation_id:path}", workflow_page, name="workflow"),
            Route("/traces/{trace_id}", trace_page, name="trace"),
            Route("/queues", queues_page, name="queues"),
            Route("/queues/{queue}/dead-letters", dead_letters_page, name="dead_letters"),
            Route("/queues/{queue}/redrive", confirm_redrive, name="confirm_redrive"),
            Route("/queues/{queue}/redrive", redrive, methods=["POST"], name="redrive"),
            Route("/events", events, name="events"),
            Route("/login", login, methods=["GET", "POST"], name="login"),
            Route("/logout", logout, methods=["POST"], name="logout"),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        middleware=[
            Middleware(_EitherProxyStyle),
            Middleware(HostCheck, allowed_hosts=chosen.allowed_hosts),
            Middleware(SecurityHeaders),
            Middleware(
                SessionMiddleware,
                secret_key=session_secret(chosen.token),
                session_cookie=SESSION_COOKIE,
                max_age=_SESSION_HOURS * 3600,
                path=chosen.root_path or "/",
                same_site="lax",  # not strict: a link pasted in a chat must land logged in
                https_only=chosen.secure_cookies,
            ),
            Middleware(TokenGate, token=chosen.token),
        ],
        exception_handlers={
            HTTPException: _http_error,
            StoreDownError: _store_down,
            TransportDownError: _transport_down,
            PaigeantError: _paigeant_error,
            Exception: _unexpected,
        },
        lifespan=lifespan,
    )
    app.state.dashboard = dashboard
    return app


class _EitherProxyStyle:
    """Serve a sub-path whether the proxy strips it (``/x`` arrives) or not (``/sub/x`` does).

    uvicorn puts ``root_path`` in front of every path it receives, so a proxy that forwards the
    prefix unchanged would otherwise give ``/sub/sub/x``: that one prefix too many is removed.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        root = scope.get("root_path", "")
        if root and scope["type"] == "http" and scope["path"].startswith(root + root + "/"):
            scope = {**scope, "path": scope["path"][len(root) :]}
            if "raw_path" in scope and scope["raw_path"] is not None:
                scope["raw_path"] = scope["raw_path"][len(root.encode()) :]
        await self.app(scope, receive, send)


def _error_page(
    request: Request, status_code: int, message: str, hint: str | None = None
) -> Response:
    dashboard = dashboard_of(request)
    return dashboard.page(
        request,
        "error.html",
        status_code=status_code,
        title=_TITLES.get(status_code, "Error"),
        code=status_code,
        message=message,
        hint=hint,
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if "text/html" not in request.headers.get("accept", "") and exc.status_code != 404:
        return Response(f"{exc.detail}\n", exc.status_code, media_type="text/plain")
    return _error_page(request, exc.status_code, str(exc.detail))


async def _store_down(request: Request, exc: Exception) -> Response:
    return _error_page(
        request,
        503,
        f"The workflow store cannot be read: {exc}",
        "The dashboard keeps trying to reconnect; reload this page once the store is back. "
        "Choose the store with --store or PAIGEANT_STORE and its location with "
        "PAIGEANT_STORE_URL.",
    )


async def _transport_down(request: Request, exc: Exception) -> Response:
    return _error_page(
        request,
        503,
        str(exc),
        "Queues and dead letters come from the transport: start the dashboard with "
        "--transport NAME (or PAIGEANT_TRANSPORT) and the broker's URL.",
    )


async def _paigeant_error(request: Request, exc: Exception) -> Response:
    logger.warning("dashboard request %s failed: %s", request.url.path, exc)
    return _error_page(request, 503, f"{type(exc).__name__}: {exc}")


async def _unexpected(request: Request, exc: Exception) -> Response:
    logger.error("dashboard request %s failed: %s: %s", request.url.path, type(exc).__name__, exc)
    return _error_page(
        request,
        500,
        "Something went wrong while building this page.",
        "The details are in the dashboard's log; this page never shows them.",
    )
