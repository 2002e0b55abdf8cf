"""The paigeant plugin module of paigeant-postgres: registers the ``postgres`` workflow store."""

from __future__ import annotations

from paigeant import hookimpl
from paigeant.hookspecs import Register

from .store import PostgresWorkflowStore

__all__ = ["register_workflow_stores"]


@hookimpl
def register_workflow_stores(register: Register) -> None:
    """Register PostgresWorkflowStore as ``postgres``."""
    register("postgres", PostgresWorkflowStore)
