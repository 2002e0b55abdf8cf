"""The login form (sets the session cookie when the token matches) and logout."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..context import dashboard_of
from ..security import check_csrf, csrf_token, safe_next, tokens_match

__all__ = ["login", "logout"]

logger = logging.getLogger(__name__)


async def login(request: Request) -> Response:
    """GET: the form; POST: check the token, start a fresh session, go where the user was going."""
    dashboard = dashboard_of(request)
    root = request.scope.get("root_path", "")
    token = dashboard.settings.token
    if token is None:  # nothing to log in to
        return RedirectResponse(dashboard.url(request, "workflows"), status_code=303)
    if request.method == "GET":
        target = safe_next(request.query_params.get("next"), "/workflows")
        return dashboard.page(request, "login.html", next=target, error=None)
    form = await check_csrf(request)
    target = safe_next(str(form.get("next", "")), "/workflows")
    sent = form.get("token")
    if not isinstance(sent, str) or not tokens_match(sent.strip(), token):
        logger.warning("dashboard login refused: wrong token (from %s)", _client(request))
        return dashboard.page(
            request,
            "login.html",
            status_code=401,
            next=target,
            error="That is not the dashboard's token.",
        )
    request.session.clear()  # a new session: no fixation, and a fresh CSRF token
    request.session["auth"] = True
    csrf_token(request)
    return RedirectResponse(root + target, status_code=303)


async def logout(request: Request) -> Response:
    """POST: end the session."""
    await check_csrf(request)
    request.session.clear()
    return RedirectResponse(dashboard_of(request).url(request, "login"), status_code=303)


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"
