"""Test support for transport authors: ``TransportConformance`` (extra ``paigeant-core[testing]``)."""

from __future__ import annotations

from .conformance import Receiver, TransportConformance

__all__ = ["Receiver", "TransportConformance"]
