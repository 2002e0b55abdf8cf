"""The in-memory transport passes the transport conformance suite."""

from __future__ import annotations

from paigeant.testing import TransportConformance
from paigeant.transports.inmemory import InMemoryBroker, InMemoryTransport


class TestInMemoryConformance(TransportConformance):
    """Conformance of the built-in in-memory transport (no restart_broker: nothing to restart)."""

    visibility_timeout = 0.5
    redelivery_grace = 1.0
    supports_browse = True

    def make_transport(self) -> InMemoryTransport:
        # One broker per test (pytest makes a new instance for each): every transport made in a
        # test shares its queues, as processes sharing a real broker would.
        broker = self.__dict__.setdefault("_broker", InMemoryBroker())
        return InMemoryTransport(broker=broker)
