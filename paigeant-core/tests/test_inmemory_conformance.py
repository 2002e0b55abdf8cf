"""The in-memory transport passes the transport conformance suite."""

from __future__ import annotations

from paigeant.testing import TransportConformance
from paigeant.transports.inmemory import InMemoryTransport


class TestInMemoryConformance(TransportConformance):
    """Conformance of the built-in in-memory transport."""

    visibility_timeout = 0.5
    redelivery_grace = 1.0

    def make_transport(self) -> InMemoryTransport:
        return InMemoryTransport()
