"""The dashboard's settings: explicit argument, then ``PAIGEANT_DASHBOARD_*`` variable, then default."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from paigeant import ConfigurationError

__all__ = ["LOOPBACK_HOSTS", "DashboardSettings"]

#: Host names a dashboard bound to loopback answers to (anything else may be DNS rebinding).
LOOPBACK_HOSTS: tuple[str, ...] = ("127.0.0.1", "localhost", "::1")

_TRACE_ID = "{trace_id}"
_ROOT_PATH = re.compile(r"(/[A-Za-z0-9._~-]+)+")
#: The dashboard's own first path segments, which a root path must not start with.
_OWN_PAGES = frozenset({"workflows", "traces", "queues", "events", "login", "logout", "static"})


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def _env_flag(name: str) -> bool | None:
    raw = _env(name)
    if raw is None:
        return None
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError(f"{name} must be 1/0, true/false, yes/no or on/off, got {raw!r}")


@dataclass(frozen=True)
class DashboardSettings:
    """How the dashboard guards and links its pages; ``DashboardSettings.load()`` reads the env.

    Attributes:
        token: every request needs it (``Authorization: Bearer`` or the login form) when set.
        allowed_hosts: ``Host`` header values accepted (DNS rebinding guard); ``*`` accepts any.
        root_path: the sub-path a reverse proxy serves the dashboard under (``/paigeant``), which
            the proxy strips before forwarding.
        trace_url: a link to your tracing tool with ``{trace_id}`` in it, shown on each workflow.
        secure_cookies: mark the session cookie ``Secure`` (set it when users reach the
            dashboard over HTTPS, e.g. through a TLS-terminating proxy).
        page_size: workflows per page.
    """

    token: str | None = field(default=None, repr=False)
    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS
    root_path: str = ""
    trace_url: str | None = None
    secure_cookies: bool = False
    page_size: int = 50

    def __post_init__(self) -> None:
        if self.token is not None and len(self.token) < 16:
            raise ConfigurationError(
                "PAIGEANT_DASHBOARD_TOKEN is too short: use at least 16 characters, e.g. "
                'python -c "import secrets; print(secrets.token_urlsafe(32))"'
            )
        if self.root_path.strip("/").split("/")[0] in _OWN_PAGES:
            raise ConfigurationError(
                f"the dashboard's root path {self.root_path!r} starts like one of its own pages "
                "(/workflows, /queues...): choose another, e.g. /paigeant"
            )
        if self.root_path and not _ROOT_PATH.fullmatch(self.root_path):
            raise ConfigurationError(
                f"the dashboard's root path must look like /paigeant or /ops/paigeant "
                f"(no trailing slash), got {self.root_path!r}"
            )
        if self.trace_url is not None and (
            not self.trace_url.startswith(("https://", "http://"))
            or _TRACE_ID not in self.trace_url
        ):
            raise ConfigurationError(
                "the trace URL must be an http(s) URL containing {trace_id}, e.g. "
                f"https://grafana.example/explore?traceId={{trace_id}}; got {self.trace_url!r}"
            )
        if not self.allowed_hosts:
            raise ConfigurationError("allowed_hosts is empty: give at least one host name, or *")
        if not 1 <= self.page_size <= 500:
            raise ConfigurationError(f"page_size must be between 1 and 500, got {self.page_size}")

    @classmethod
    def load(
        cls,
        *,
        token: str | None = None,
        allowed_hosts: Sequence[str] | None = None,
        root_path: str | None = None,
        trace_url: str | None = None,
        secure_cookies: bool | None = None,
        page_size: int | None = None,
        bind_host: str = "127.0.0.1",
    ) -> DashboardSettings:
        """Settings from the arguments, else ``PAIGEANT_DASHBOARD_*``, else the defaults.

        Without allowed hosts given, a dashboard bound to ``bind_host`` answers to the loopback
        names and, when ``bind_host`` is a specific address or name, to that one too.
        """
        hosts = list(allowed_hosts or [])
        if not hosts:
            listed = _env("PAIGEANT_DASHBOARD_ALLOWED_HOSTS")
            hosts = [h.strip() for h in (listed or "").split(",") if h.strip()]
        if not hosts:
            hosts = list(LOOPBACK_HOSTS)
            if bind_host not in ("", "0.0.0.0", "::", *LOOPBACK_HOSTS):
                hosts.append(bind_host)
        size = page_size if page_size is not None else _env("PAIGEANT_DASHBOARD_PAGE_SIZE")
        try:
            chosen_size = int(size) if size is not None else 50
        except ValueError:
            raise ConfigurationError(
                f"PAIGEANT_DASHBOARD_PAGE_SIZE must be an integer, got {size!r}"
            ) from None
        secure = secure_cookies
        if secure is None:
            secure = _env_flag("PAIGEANT_DASHBOARD_SECURE_COOKIES") or False
        return cls(
            token=token or _env("PAIGEANT_DASHBOARD_TOKEN"),
            allowed_hosts=tuple(h.lower() for h in hosts),
            root_path=(root_path or _env("PAIGEANT_DASHBOARD_ROOT_PATH") or "").rstrip("/"),
            trace_url=trace_url or _env("PAIGEANT_DASHBOARD_TRACE_URL"),
            secure_cookies=secure,
            page_size=chosen_size,
        )

    def trace_link(self, trace_id: str | None) -> str | None:
        """The tracing tool's URL for ``trace_id`` (a 32-digit hex id), or None."""
        if self.trace_url is None or trace_id is None or not re.fullmatch("[0-9a-f]{32}", trace_id):
            return None
        return self.trace_url.replace(_TRACE_ID, trace_id)
