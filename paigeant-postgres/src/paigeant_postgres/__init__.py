"""paigeant-postgres: a paigeant WorkflowStore in PostgreSQL (``get_workflow_store("postgres")``).

Its names load on first use, so merely having the plugin installed costs workers nothing.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._schema import SCHEMA_VERSION
    from .store import DEFAULT_SCHEMA, DEFAULT_URL, PostgresWorkflowStore

try:
    __version__ = version("paigeant-postgres")
except PackageNotFoundError:  # pragma: no cover - source tree without metadata
    __version__ = "0+unknown"

__all__ = [
    "DEFAULT_SCHEMA",
    "DEFAULT_URL",
    "SCHEMA_VERSION",
    "PostgresWorkflowStore",
    "__version__",
]

_LAZY = {
    "DEFAULT_SCHEMA": ".store",
    "DEFAULT_URL": ".store",
    "PostgresWorkflowStore": ".store",
    "SCHEMA_VERSION": "._schema",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'paigeant_postgres' has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value
