"""Choosing the workflow store by name: ``get_workflow_store`` (the lookup of DESIGN section 2)."""

from __future__ import annotations

from typing import Any

from ..plugins import create_component
from .base import WorkflowStore

__all__ = ["get_workflow_store"]


def get_workflow_store(name: str | None = None, **options: Any) -> WorkflowStore:
    """Create the workflow store ``name`` (else ``PAIGEANT_STORE``, else ``sqlite``).

    Stores take their location from the ``url`` option, else ``PAIGEANT_STORE_URL``.
    """
    store: WorkflowStore = create_component("workflow_store", name, **options)
    return store
