"""Conformance suites for plugin authors: ``TransportConformance`` and ``WorkflowStoreConformance``
(extra ``paigeant-core[testing]``), ``WorkflowEvents`` to build realistic events, and
``recount`` to check a store's ``counts()`` against its rows, ``records_in_every_status`` for
migration tests.

Subclass a suite in your package's tests and define its factory. Modules here may import any
wing except ``cli``; the library never imports this wing.
"""

from __future__ import annotations

try:
    import pytest  # noqa: F401
    import pytest_asyncio  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise ImportError(
        "paigeant.testing needs pytest and pytest-asyncio: pip install 'paigeant-core[testing]'"
    ) from exc

from ._store_suite_counts import records_in_every_status, recount
from .conformance import Receiver, TransportConformance
from .events import WorkflowEvents
from .store_conformance import WorkflowStoreConformance

__all__ = [
    "Receiver",
    "TransportConformance",
    "WorkflowEvents",
    "WorkflowStoreConformance",
    "records_in_every_status",
    "recount",
]
