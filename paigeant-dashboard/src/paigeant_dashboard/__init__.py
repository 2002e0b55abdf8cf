"""paigeant-dashboard: a live web view of workflows, steps, queues and dead letters.

``create_app(store, transport=None, settings=None)`` builds the Starlette app;
``serve(...)`` runs it under uvicorn (what ``paigeant dashboard`` does).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .app import create_app
from .server import DashboardServer, serve
from .settings import DashboardSettings

try:
    __version__ = version("paigeant-dashboard")
except PackageNotFoundError:  # pragma: no cover - source tree without metadata
    __version__ = "0+unknown"

__all__ = ["DashboardServer", "DashboardSettings", "__version__", "create_app", "serve"]
