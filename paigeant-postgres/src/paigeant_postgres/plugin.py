"""The paigeant plugin module of paigeant-postgres: registers the ``postgres`` workflow store.

The store (and psycopg) is imported when a store is created, not when plugins load: workers and
dispatchers, which never use a store, do not pay for it.
"""

from __future__ import annotations

from typing import Any

from paigeant import hookimpl
from paigeant.hookspecs import Register

__all__ = ["register_workflow_stores"]


def postgres_store(**options: Any) -> Any:
    """A PostgresWorkflowStore with ``options``."""
    from .store import PostgresWorkflowStore

    return PostgresWorkflowStore(**options)


@hookimpl
def register_workflow_stores(register: Register) -> None:
    """Register PostgresWorkflowStore as ``postgres``."""
    register("postgres", postgres_store)
