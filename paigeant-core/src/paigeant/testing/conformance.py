"""The transport conformance suite: subclass ``TransportConformance``, define ``make_transport``.

Every rule of the Transport contract (DESIGN section 3) is a test here, and a Worker and the
dead-letter tools run on the transport as they would in production. Class attributes and
overridable methods declare what a transport can do; a test whose capability is declared absent
is skipped with a reason that says what to implement.
"""

from __future__ import annotations

from ._receiver import Receiver
from ._suite_basics import BasicsTests
from ._suite_browse import BrowseTests
from ._suite_chaos import ChaosTests
from ._suite_delays import DelayTests
from ._suite_forwarding import ForwardingTests
from ._suite_restart import RestartTests
from ._suite_settlement import SettlementTests
from ._suite_stats import StatsTests
from ._suite_workers import WorkerTests

__all__ = ["Receiver", "TransportConformance"]


class TransportConformance(
    BasicsTests,
    SettlementTests,
    ForwardingTests,
    DelayTests,
    StatsTests,
    BrowseTests,
    ChaosTests,
    RestartTests,
    WorkerTests,
):
    """Every rule of the Transport contract, as tests. Subclass and define ``make_transport``.

    Capabilities and settings (class attributes):

    - ``visibility_timeout`` (1.0), ``max_deliveries`` (3): set on each transport before it
      connects, so leases and poison protection show quickly.
    - ``redelivery_grace`` (5.0): extra seconds a redelivery or a due delay may take.
    - ``supports_delay`` (True): ``publish(delay=)``/``nack(delay=)`` work; False skips the
      delay tests.
    - ``delay_resolution`` (0.15): the smallest gap between delays kept in order.
    - ``supports_stats`` (True): ``stats()`` works; False skips its test.
    - ``supports_browse`` (False): the optional ``browse()`` works; while False the suite only
      checks that it raises NotImplementedError.
    - ``publish_failure_bound`` (30.0): longest a publish may take while the broker is down.
    - ``chaos_messages`` (200): messages sent through the chaos test's three hops.
    - ``max_body_bytes`` (1 MiB): the largest body the broker under test accepts; the big-body
      test sends exactly that.

    Overridable methods:

    - ``make_transport()`` (required): a new, unconnected transport; all it returns within one
      test reach the same broker.
    - ``restart_broker()`` (optional): restarts the broker of the tests' own; enables the
      restart tests.
    - ``fail_next_forward(transport, queue)``: an async context manager inside which forwards
      to ``queue`` fail; the default patches ``transport.publish``. Override it when
      ``ack(forward=...)`` does not go through ``publish`` (an atomic forward).
    - ``publish_foreign(transport, queue, body)`` (optional): publishes with the broker's own
      client, as a producer that is not paigeant would; enables the test that a Worker
      dead-letters such a message with a reason.
    """
