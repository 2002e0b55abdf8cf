"""Safe by default: the Host check, security headers, the token gate and CSRF protection.

Middleware order, outermost first: ``HostCheck`` (DNS rebinding), ``SecurityHeaders`` (a strict
Content-Security-Policy and friends on every response), Starlette's ``SessionMiddleware`` (a
signed, HttpOnly, SameSite=Lax cookie), ``TokenGate`` (with a token set, every request but the
login form and the static files needs it).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from urllib.parse import quote, urlsplit

from starlette.datastructures import FormData, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "SESSION_COOKIE",
    "HostCheck",
    "SecurityHeaders",
    "TokenGate",
    "check_csrf",
    "csrf_token",
    "safe_next",
    "session_secret",
    "tokens_match",
]

#: The session cookie's name: distinctive, since cookies ignore ports and 127.0.0.1 is shared.
SESSION_COOKIE = "paigeant_dashboard_session"

#: Scripts and styles from our own /static only: no inline script, no inline style, no frames.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

_FORM_LIMITS = {"max_files": 0, "max_fields": 1200, "max_part_size": 64 * 1024}


def tokens_match(sent: str, expected: str) -> bool:
    """Compare two secrets in constant time."""
    return hmac.compare_digest(sent.encode(), expected.encode())


def session_secret(token: str | None) -> str:
    """The session signing key: derived from the token (rotating it ends every session), else random."""
    if token is None:
        return secrets.token_urlsafe(32)
    return hashlib.sha256(b"paigeant-dashboard-session\0" + token.encode()).hexdigest()


class HostCheck:
    """Refuse requests whose ``Host`` is not an allowed name: a rebound DNS name gets a 400."""

    def __init__(self, app: ASGIApp, allowed_hosts: Sequence[str]) -> None:
        self.app = app
        self.allowed = {host.lower() for host in allowed_hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or "*" in self.allowed:
            await self.app(scope, receive, send)
            return
        raw = HTTPConnection(scope).headers.get("host", "")
        try:
            host = (urlsplit(f"//{raw}").hostname or "").lower()
        except ValueError:
            host = ""
        if host in self.allowed:
            await self.app(scope, receive, send)
            return
        response = PlainTextResponse(
            f"This dashboard does not answer to the host {raw!r}. If you reach it under that "
            "name (behind a reverse proxy, say), start it with --allowed-host NAME or set "
            "PAIGEANT_DASHBOARD_ALLOWED_HOSTS.",
            status_code=400,
        )
        await response(scope, receive, send)


class SecurityHeaders:
    """Content-Security-Policy, no sniffing, no framing, no referrer, no caching of pages."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith(f"{scope.get('root_path', '')}/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
                headers["X-Content-Type-Options"] = "nosniff"
                headers["X-Frame-Options"] = "DENY"
                headers["Referrer-Policy"] = "no-referrer"
                headers["Cross-Origin-Opener-Policy"] = "same-origin"
                if not static:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


class TokenGate:
    """With a token, a request needs ``Authorization: Bearer <token>`` or a logged-in session.

    Pages asked for by a browser are redirected to the login form; anything else gets 401.
    The login form and the static files (our own CSS and JS) are open.
    """

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.token is None or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        root = scope.get("root_path", "")
        path = scope["path"].removeprefix(root) if root else scope["path"]
        if path == "/login" or path.startswith("/static/"):
            await self.app(scope, receive, send)
            return
        auth = connection.headers.get("authorization", "")
        scheme, _, sent = auth.partition(" ")
        if scheme.lower() == "bearer" and sent and tokens_match(sent.strip(), self.token):
            scope.setdefault("state", {})["bearer"] = True
            await self.app(scope, receive, send)
            return
        if connection.session.get("auth") is True:
            await self.app(scope, receive, send)
            return
        response: Response
        if scope["method"] == "GET" and "text/html" in connection.headers.get("accept", ""):
            target = path + (f"?{scope['query_string'].decode()}" if scope["query_string"] else "")
            response = RedirectResponse(f"{root}/login?next={quote(target, safe='')}", 303)
        else:
            response = PlainTextResponse(
                "authentication required: send Authorization: Bearer <PAIGEANT_DASHBOARD_TOKEN>",
                401,
                headers={"WWW-Authenticate": 'Bearer realm="paigeant-dashboard"'},
            )
        await response(scope, receive, send)


def csrf_token(request: Request) -> str:
    """The session's CSRF token (created on first use), for the hidden field of every form."""
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return token


async def check_csrf(request: Request) -> FormData:
    """The POSTed form, once it proved it came from our own page; 403 otherwise.

    Requests authenticated by a Bearer header need no CSRF token (a browser never adds that
    header by itself); any other needs the session's token in the ``csrf_token`` field, and a
    browser's ``Sec-Fetch-Site`` must not say the request came from another site.
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        raise HTTPException(403, f"refused a {site} request: use the dashboard's own pages")
    form = await request.form(**_FORM_LIMITS)
    if request.scope.get("state", {}).get("bearer") is True:
        return form
    sent, expected = form.get("csrf_token"), request.session.get("csrf")
    if (
        not isinstance(sent, str)
        or not isinstance(expected, str)
        or not tokens_match(sent, expected)
    ):
        raise HTTPException(
            403, "the form's CSRF token is missing or out of date: reload the page and try again"
        )
    return form


def safe_next(target: str | None, default: str) -> str:
    """``target`` when it is a path on this site (no open redirect), else ``default``."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in target):  # browsers drop tabs...
        return default
    return target
