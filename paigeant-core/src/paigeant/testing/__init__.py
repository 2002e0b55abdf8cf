"""Conformance suites for plugin authors: ``TransportConformance`` (extra ``paigeant-core[testing]``).

Subclass a suite in your package's tests and define its factory. Modules here may import any
wing except ``cli``; the library never imports this wing.
"""

from __future__ import annotations

from .conformance import Receiver, TransportConformance

__all__ = ["Receiver", "TransportConformance"]
