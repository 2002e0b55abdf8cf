"""The Transport contract every broker plugin implements (DESIGN section 3).

The rules, each documented again on the method it concerns, and each checked by
``paigeant.testing.TransportConformance``:

- **At least once, nothing lost.** ``publish`` returns once the broker durably accepted the
  message. A delivery that is neither acked, nacked nor dead-lettered comes back (``attempt``
  one higher) once its consumer dies or its lease (``visibility_timeout``) runs out;
  ``extend()`` renews the lease. A broker without leases gets them from the transport.
- **``attempt`` is counted by the broker** (delivery count, ``num_delivered``, PEL counter),
  so it survives crashes, new transport instances and ``nack(delay=...)``.
- **Competing consumers:** each message goes to one consumer of its queue at a time.
- **Forward before ack:** ``ack(forward=...)`` publishes the forwards, then acknowledges;
  atomically where the broker can, else a crash in between leaves a duplicate forward with the
  same ``message_id``.
- **Settling is once:** the first ``ack``/``nack``/``dead_letter`` settles a delivery; any later
  settle of that delivery is a logged no-op, never an error.
- **After the lease was lost** (the message may be with another consumer): ``ack`` still
  publishes its forwards and acknowledges where the broker allows it, ``nack`` and
  ``dead_letter`` do nothing, ``extend`` raises ``LeaseLostError``.
- **Poison protection:** past ``max_deliveries`` the transport dead-letters the message itself,
  before user code sees that delivery. Dead letters carry the ``DEAD_LETTER_*`` headers.
- **Delays** are durable and never block messages due earlier.
- **Outages:** a broker that restarts is reconnected to and consume loops resume by
  themselves; ``publish`` to a broker that stays down raises ``TransportConnectionError``
  within a bounded time each transport documents.
- **Browsing (optional):** ``browse(queue, limit=)`` returns read-only copies of a queue's
  messages, oldest first, without taking them (no delivery, no lease, no delivery count).
  Tools use it to list dead letters; a transport whose broker cannot look without taking
  leaves it raising NotImplementedError, and tools fall back to consuming.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import ClassVar

__all__ = [
    "DEAD_LETTER_ATTEMPT_HEADER",
    "DEAD_LETTER_QUEUE_HEADER",
    "DEAD_LETTER_REASON_HEADER",
    "DEAD_LETTER_TIME_HEADER",
    "BrowsedMessage",
    "Delivery",
    "Outgoing",
    "QueueStats",
    "Transport",
    "dead_letter_headers",
    "too_many_deliveries",
]

logger = logging.getLogger(__name__)

#: Header of a dead letter: why it was dead-lettered.
DEAD_LETTER_REASON_HEADER = "x-paigeant-dead-letter-reason"
#: Header of a dead letter: the queue it was taken from.
DEAD_LETTER_QUEUE_HEADER = "x-paigeant-dead-letter-queue"
#: Header of a dead letter: the attempt (delivery count) it had reached, as a decimal string.
DEAD_LETTER_ATTEMPT_HEADER = "x-paigeant-dead-letter-attempt"
#: Header of a dead letter: when it was dead-lettered, ISO 8601 in UTC.
DEAD_LETTER_TIME_HEADER = "x-paigeant-dead-letter-time"


def too_many_deliveries(deliveries: int, max_deliveries: int) -> str:
    """The reason of a message dead-lettered by its transport past ``max_deliveries``."""
    return f"delivered {deliveries} times without success (max_deliveries={max_deliveries})"


def dead_letter_headers(
    headers: Mapping[str, str],
    *,
    reason: str,
    queue: str,
    attempt: int,
    at: datetime | None = None,
) -> dict[str, str]:
    """The headers of a dead letter: the message's own plus reason, source queue, attempt, time.

    Args:
        headers: The message's headers, kept as they are.
        reason: Why it is dead-lettered (``DEAD_LETTER_REASON_HEADER``).
        queue: The queue it was taken from (``DEAD_LETTER_QUEUE_HEADER``).
        attempt: Deliveries it had had: the attempt of the delivery that was dead-lettered, or
            ``max_deliveries`` when the transport dead-letters it past that limit
            (``DEAD_LETTER_ATTEMPT_HEADER``).
        at: When; default now. Written in UTC with milliseconds (``DEAD_LETTER_TIME_HEADER``).
    """
    when = (at or datetime.now(UTC)).astimezone(UTC)
    return {
        **headers,
        DEAD_LETTER_REASON_HEADER: reason,
        DEAD_LETTER_QUEUE_HEADER: queue,
        DEAD_LETTER_ATTEMPT_HEADER: str(int(attempt)),
        DEAD_LETTER_TIME_HEADER: when.isoformat(timespec="milliseconds"),
    }


@dataclass(frozen=True, slots=True)
class QueueStats:
    """How many messages a queue holds, by state (``Transport.stats``)."""

    #: Published (or due again) and waiting for a consumer.
    ready: int
    #: Delivered to a consumer and not settled yet, including deliveries whose consumer died
    #: and whose lease has not run out yet.
    in_flight: int
    #: Waiting for their delay (``publish(delay=)``, ``nack(delay=)``) to pass.
    delayed: int
    #: In the queue's dead-letter queue (``dead_letter_queue(queue)``), not yet consumed away.
    dead: int


@dataclass(frozen=True, slots=True)
class BrowsedMessage:
    """A message seen by ``Transport.browse``: a read-only copy; the message stays queued."""

    #: The queue browsed.
    queue: str
    message_id: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message to publish when a delivery is acknowledged (``ack(forward=...)``)."""

    queue: str
    body: bytes
    message_id: str
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0


class Delivery(ABC):
    """One delivery of a message to a consumer, leased to it until settled.

    Settle it once with ``ack``, ``nack`` or ``dead_letter``; a later settle of the same
    delivery is a no-op that logs. Implementations run each settle through ``_settle_once``
    (or call ``_claim_settlement`` first, and ``_release_settlement`` when the settle failed
    and settled nothing).
    """

    body: bytes
    message_id: str
    headers: Mapping[str, str]
    #: 1 on the first delivery, one more on every redelivery (by ``nack``, an expired lease or
    #: a dead consumer). Counted by the broker, so it survives crashes and new transports.
    attempt: int
    #: The queue this delivery was consumed from.
    queue: str
    _settlement: str | None = None

    @property
    def settled(self) -> bool:
        """Whether ``ack``, ``nack`` or ``dead_letter`` has settled (or is settling) it."""
        return self._settlement is not None

    def _claim_settlement(self, action: str) -> bool:
        """Start settling by ``action``; False, and a log line, if the delivery already was."""
        if self._settlement is not None:
            logger.info(
                "%s of message %s on %s ignored: the delivery was already settled by %s",
                action,
                self.message_id,
                self.queue,
                self._settlement,
            )
            return False
        self._settlement = action
        return True

    def _release_settlement(self) -> None:
        """Undo ``_claim_settlement`` after a settle that failed, so it may be tried again."""
        self._settlement = None

    async def _settle_once(self, action: str, operation: Callable[[], Awaitable[None]]) -> bool:
        """Settle by ``action``, running ``operation``; False (logged) if already settled.

        An ``operation`` that raises settled nothing: the claim is undone (the delivery may be
        settled again) and the error raised.
        """
        if not self._claim_settlement(action):
            return False
        try:
            await operation()
        except BaseException:
            self._release_settlement()
            raise
        return True

    def _log_lost(self, action: str, outcome: str) -> None:
        """Log a settle made after the lease was lost, with what it did (``outcome``)."""
        logger.info(
            "%s of message %s on %s after its lease was lost (it may be with another consumer): %s",
            action,
            self.message_id,
            self.queue,
            outcome,
        )

    @abstractmethod
    async def ack(self, *, forward: Sequence[Outgoing] = ()) -> None:
        """Publish ``forward`` durably, then acknowledge this delivery; never the other order.

        If publishing a forward fails, the delivery is not acknowledged and the error is
        raised; it may be settled again. After the lease was lost the forwards are still
        published (the work was done; whoever runs the message again forwards the same ids)
        and the message is acknowledged where the broker allows it. A second settle: no-op.
        """

    @abstractmethod
    async def nack(self, *, delay: float = 0.0) -> None:
        """Give the message back, redelivered after ``delay`` seconds with ``attempt`` + 1.

        At the last allowed delivery (``max_deliveries``) the transport dead-letters it instead.
        After the lease was lost it does nothing (the new holder decides); after a settle it
        is a no-op.
        """

    @abstractmethod
    async def dead_letter(self, reason: str) -> None:
        """Move the message to ``dead_letter_queue(queue)`` with ``reason``; never redelivered.

        The dead letter keeps body, message id and headers, plus ``dead_letter_headers``. After
        the lease was lost it does nothing; after a settle it is a no-op.
        """

    @abstractmethod
    async def extend(self) -> None:
        """Heartbeat: renew the lease so the message is not redelivered while work goes on.

        Raises ``LeaseLostError`` when the lease already ran out and the message may be with
        another consumer. On a settled delivery it does nothing. A transport may log instead
        of raising while its broker is unreachable (the lease may then run out).
        """


class Transport(ABC):
    """A broker connection that publishes to and consumes from named queues, at least once."""

    #: Whether producers and consumers in other processes share this transport's queues.
    crosses_processes: ClassVar[bool] = True
    #: Seconds an unsettled delivery is leased before it is redelivered.
    visibility_timeout: float = 30.0
    #: Deliveries after which the transport dead-letters a message itself.
    max_deliveries: int = 10

    @abstractmethod
    async def connect(self) -> None:
        """Connect to the broker; idempotent. TransportConnectionError if it is unreachable."""

    @abstractmethod
    async def disconnect(self) -> None:
        """Disconnect; idempotent. Ends consume loops; unsettled deliveries are redelivered."""

    @abstractmethod
    async def publish(
        self,
        queue: str,
        body: bytes,
        *,
        message_id: str,
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
    ) -> None:
        """Publish ``body`` to ``queue``, due after ``delay`` seconds; returns once durable.

        Returns only after the broker durably accepted the message; a refused or unroutable
        publish raises. While the broker is briefly unreachable it may retry; a broker that
        stays down makes it raise ``TransportConnectionError`` within a bounded time that the
        transport documents, never hang.
        """

    @abstractmethod
    def consume(self, queue: str, *, prefetch: int = 16) -> AsyncIterator[Delivery]:
        """Yield deliveries from ``queue``, at most ``prefetch`` unsettled at a time.

        Competing consumers of one queue share its messages. The loop rides out broker
        restarts by itself and ends (StopAsyncIteration) after ``disconnect()``; closing it
        does not settle what it handed out, and those deliveries keep their leases (a worker
        that stopped consuming drains its steps: ``extend()`` and the settles still work; left
        unsettled, they come back when the lease runs out).
        """

    @abstractmethod
    async def delete_queue(self, queue: str) -> None:
        """Delete ``queue`` and everything in it (used by tests and tools)."""

    async def stats(self, queue: str) -> QueueStats:
        """Count ``queue``'s messages by state (see ``QueueStats``); optional.

        Raises NotImplementedError where the broker cannot tell; each transport documents how
        exact its figures are.
        """
        raise NotImplementedError(f"{type(self).__name__} does not report queue statistics")

    async def browse(self, queue: str, *, limit: int = 100) -> list[BrowsedMessage]:
        """Up to ``limit`` of ``queue``'s messages, oldest first, without taking them; optional.

        A snapshot of the messages ready or in flight (delayed ones are left out), as read-only
        copies: nothing is delivered, leased, settled or counted as a delivery, so consumers
        of the queue notice nothing. Raises NotImplementedError where the broker cannot look
        without taking (``paigeant.DeadLetters`` then falls back to consuming); each
        transport documents what it shows.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot browse a queue")

    async def __aenter__(self) -> Transport:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.disconnect()
