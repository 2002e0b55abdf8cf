"""A delivery from a RabbitMQ quorum queue, leased by the transport until settled.

AMQP has no leases: the broker keeps an unacknowledged message with its channel for as long as
the channel lives. The transport gives each delivery a lease of ``visibility_timeout`` seconds,
renewed by ``extend()``; when it runs out the consume loop gives the message back to the broker
(``basic.reject`` with requeue, counted as a delivery), and from then on this delivery never
touches its delivery tag again: a settle of an unknown tag would close the channel. The same
holds once the channel itself is gone (the broker then requeued the message already).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from paigeant import Delivery, LeaseLostError, Outgoing, too_many_deliveries

if TYPE_CHECKING:
    from ._session import Session

__all__ = ["RabbitMQDelivery"]

logger = logging.getLogger(__name__)


class RabbitMQDelivery(Delivery):
    """One delivery of a message to a ``consume()`` loop, on the loop's channel."""

    def __init__(
        self,
        session: Session,
        tag: int,
        *,
        body: bytes,
        message_id: str,
        headers: Mapping[str, str],
        attempt: int,
    ) -> None:
        """Wrap delivery ``tag`` of ``session``'s channel; leased from now."""
        self._session = session
        self.tag = tag
        self.queue = session.queue
        self.body = body
        self.message_id = message_id
        self.headers = headers
        self.attempt = attempt
        #: When the lease runs out (monotonic clock); moved on by ``extend()``.
        self.deadline = time.monotonic() + session.visibility_timeout
        #: Set once the message went back to the broker (lease ran out, channel gone).
        self.returned = False

    def __repr__(self) -> str:
        return (
            f"RabbitMQDelivery(queue={self.queue!r}, message_id={self.message_id!r}, "
            f"tag={self.tag}, attempt={self.attempt})"
        )

    @property
    def lease_lost(self) -> bool:
        """Whether the message went back to the broker (and may be with another consumer)."""
        return self.returned or not self._session.open

    async def ack(self, *, forward: Sequence[Outgoing] = ()) -> None:
        """Publish ``forward`` (each confirmed by the broker), then acknowledge.

        After the lease was lost the forwards are still published (same message ids as whoever
        runs the message again will forward) and nothing is acknowledged: the broker has it back.
        """
        if await self._settle_once("ack", lambda: self._ack(forward)):
            self._session.settled(self)

    async def _ack(self, forward: Sequence[Outgoing]) -> None:
        await self._forward(forward)
        if self.lease_lost:
            self._log_lost("ack", "forwards published; the broker redelivers the message")
        else:
            await self._session.ack(self)

    async def _forward(self, forward: Sequence[Outgoing]) -> None:
        publish = self._session.transport.publish  # looked up now: tests may replace it
        publishes = [
            publish(
                out.queue, out.body, message_id=out.message_id, headers=out.headers, delay=out.delay
            )
            for out in forward
        ]
        if len(publishes) == 1:
            await publishes[0]
        elif publishes:
            await asyncio.gather(*publishes)

    async def nack(self, *, delay: float = 0.0) -> None:
        """Redeliver after ``delay``: requeued at once, or through the delay ladder.

        A delayed redelivery is a new message carrying this one's attempt count; it is
        published before this delivery is acknowledged. At ``max_deliveries`` it is
        dead-lettered instead; after the lease was lost it does nothing.
        """
        if await self._settle_once("nack", lambda: self._nack(delay)):
            self._session.settled(self)

    async def _nack(self, delay: float) -> None:
        if self.lease_lost:
            self._log_lost("nack", "nothing requeued")
            return
        session = self._session
        transport = session.transport
        if self.attempt >= transport.max_deliveries:
            await self._park(too_many_deliveries(self.attempt, transport.max_deliveries))
        elif delay > 0:
            await transport.publish_again(self, delay=delay)
            await session.ack(self)
        else:
            await session.requeue(self)

    async def dead_letter(self, reason: str) -> None:
        """Publish the message to ``dead_letter_queue(queue)`` with ``reason``, then ack it."""
        if await self._settle_once("dead_letter", lambda: self._dead_letter(reason)):
            self._session.settled(self)

    async def _dead_letter(self, reason: str) -> None:
        if self.lease_lost:
            self._log_lost("dead_letter", "left with the broker")
        else:
            await self._park(reason)

    async def dead_letter_past_limit(self) -> None:
        """Dead-letter a delivery past ``max_deliveries`` before anyone sees it (the loop does)."""
        limit = self._session.transport.max_deliveries
        reason = too_many_deliveries(self.attempt - 1, limit)
        if await self._settle_once("dead_letter", lambda: self._park(reason, attempt=limit)):
            self._session.settled(self)

    async def _park(self, reason: str, *, attempt: int | None = None) -> None:
        await self._session.transport.park(self, reason, attempt=attempt or self.attempt)
        await self._session.ack(self)
        logger.warning("dead-lettered message %s from %s: %s", self.message_id, self.queue, reason)

    async def extend(self) -> None:
        """Renew the lease; LeaseLostError once the message went back to the broker."""
        if self.settled:
            return
        if self.lease_lost:
            raise LeaseLostError(
                f"the lease of message {self.message_id} on {self.queue} was lost: it ran out "
                f"(visibility_timeout={self._session.visibility_timeout}s) or the channel "
                "closed, and the message may be with another consumer"
            )
        self.deadline = time.monotonic() + self._session.visibility_timeout
