"""paigeant-postgres: a paigeant WorkflowStore in PostgreSQL (``get_workflow_store("postgres")``)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

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
