"""The Transport contract every broker plugin implements (DESIGN section 3)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import ClassVar

__all__ = [
    "DEAD_LETTER_ATTEMPT_HEADER",
    "DEAD_LETTER_QUEUE_HEADER",
    "DEAD_LETTER_REASON_HEADER",
    "DEAD_LETTER_TIME_HEADER",
    "Delivery",
    "Outgoing",
    "QueueStats",
    "Transport",
]

#: Header of a dead letter: why it was dead-lettered.
DEAD_LETTER_REASON_HEADER = "x-paigeant-dead-letter-reason"
#: Header of a dead letter: the queue it was taken from.
DEAD_LETTER_QUEUE_HEADER = "x-paigeant-dead-letter-queue"
#: Header of a dead letter: the attempt (delivery count) it had reached, as a decimal string.
DEAD_LETTER_ATTEMPT_HEADER = "x-paigeant-dead-letter-attempt"
#: Header of a dead letter: when it was dead-lettered, ISO 8601 in UTC.
DEAD_LETTER_TIME_HEADER = "x-paigeant-dead-letter-time"


@dataclass(frozen=True, slots=True)
class QueueStats:
    """How many messages a queue holds, by state (``Transport.stats``)."""

    #: Published and waiting for a consumer.
    ready: int
    #: Delivered to a consumer and not settled yet.
    in_flight: int
    #: Waiting for their delay (``publish(delay=)``, ``nack(delay=)``) to pass.
    delayed: int
    #: In the queue's dead-letter queue.
    dead: int


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message to publish when a delivery is acknowledged (``ack(forward=...)``)."""

    queue: str
    body: bytes
    message_id: str
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0


class Delivery(ABC):
    """One delivery of a message to a consumer; settle it exactly once."""

    body: bytes
    message_id: str
    headers: Mapping[str, str]
    attempt: int
    queue: str

    @abstractmethod
    async def ack(self, *, forward: Sequence[Outgoing] = ()) -> None:
        """Publish ``forward`` (durably), then acknowledge this delivery."""

    @abstractmethod
    async def nack(self, *, delay: float = 0.0) -> None:
        """Give the message back, to be redelivered after ``delay`` seconds."""

    @abstractmethod
    async def dead_letter(self, reason: str) -> None:
        """Move the message to its queue's dead-letter queue with ``reason``; never redelivered."""

    @abstractmethod
    async def extend(self) -> None:
        """Heartbeat: renew the lease so the message is not redelivered while work goes on."""


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
        """Connect to the broker; calling it again while connected does nothing."""

    @abstractmethod
    async def disconnect(self) -> None:
        """Disconnect; idempotent, and unsettled deliveries are redelivered, not lost."""

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
        """Publish ``body`` to ``queue``; returns once the broker has durably accepted it."""

    @abstractmethod
    def consume(self, queue: str, *, prefetch: int = 16) -> AsyncIterator[Delivery]:
        """Yield deliveries from ``queue``, at most ``prefetch`` unsettled at a time."""

    @abstractmethod
    async def delete_queue(self, queue: str) -> None:
        """Delete ``queue`` and everything in it (used by tests and tools)."""

    async def stats(self, queue: str) -> QueueStats:
        """Count ``queue``'s messages by state; NotImplementedError where the broker can't tell."""
        raise NotImplementedError(f"{type(self).__name__} does not report queue statistics")

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
