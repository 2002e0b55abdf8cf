"""A delivery read from a Redis stream; each way of settling it is one atomic Lua script."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from paigeant import Delivery, LeaseLostError, Outgoing, TransportConnectionError

from ._codec import delay_ms
from ._keys import CONSUMER_GROUP

if TYPE_CHECKING:
    from ._consumer import ConsumeLoop

__all__ = ["RedisDelivery", "dead_letter_entry"]

logger = logging.getLogger(__name__)


async def dead_letter_entry(
    loop: ConsumeLoop, entry_id: str, reason: str, *, attempt: int, count: int | None
) -> bool:
    """Move ``loop``'s entry to the dead-letter stream (XADD+XACK+XDEL); False if not held.

    ``attempt`` goes into the dead letter's header; ``count`` is the delivery count the loop
    got the entry with (None: any), so a lease lost meanwhile is noticed.
    """
    outcome = await loop.transport.run_script(
        "dead_letter",
        [loop.stream, loop.dead_letter_stream],
        [
            CONSUMER_GROUP,
            loop.name,
            entry_id,
            reason,
            loop.queue,
            attempt,
            "" if count is None else count,
        ],
    )
    return bool(int(outcome))


class RedisDelivery(Delivery):
    """One delivery of a stream entry to a consume() loop, leased until it is settled."""

    def __init__(
        self,
        loop: ConsumeLoop,
        entry_id: str,
        *,
        body: bytes,
        message_id: str,
        headers: Mapping[str, str],
        attempt: int,
        count: int = 1,
    ) -> None:
        """Wrap stream entry ``entry_id`` delivered to ``loop`` (``count``: its PEL count)."""
        self._loop = loop
        self.entry_id = entry_id
        self.queue = loop.queue
        self.body = body
        self.message_id = message_id
        self.headers = headers
        self.attempt = attempt
        #: The consumer group's delivery count for this delivery: a later delivery (even to
        #: the same consumer) has a higher one, which tells a lost lease.
        self.count = count

    @property
    def consumer(self) -> str:
        """Name of the consumer in the stream's group that holds this delivery."""
        return self._loop.name

    def __repr__(self) -> str:
        return (
            f"RedisDelivery(queue={self.queue!r}, message_id={self.message_id!r}, "
            f"entry_id={self.entry_id!r}, attempt={self.attempt})"
        )

    def _released(self, action: str) -> bool:
        """Whether disconnect() released the entry (the lease is gone): ``action`` does nothing."""
        gone = self._loop.lease_gone
        if gone is not None:
            self._log_lost(action, f"{gone}; nothing done")
        return gone is not None

    async def _settle(self, action: str, operation: Callable[[], Awaitable[None]]) -> None:
        """Run one settling script, once; a settle that failed may be tried again."""
        await self._settle_once(action, lambda: self._loop.settle(self, operation()))

    async def ack(self, *, forward: Sequence[Outgoing] = ()) -> None:
        """Add ``forward`` and XACK+XDEL this entry atomically; repeated forward ids skipped.

        Acks made while another is on the wire are sent together in one script call. After
        the lease was lost the forwards are still added and the entry is acknowledged (an
        XACK needs no lease); the new holder's own ack then finds both done.
        """
        await self._settle("ack", lambda: self._ack(forward))

    async def _ack(self, forward: Sequence[Outgoing]) -> None:
        result = await self._loop.transport.acks.ack(self._loop.stream, self.entry_id, forward)
        if result.skipped:
            logger.info(
                "ack of message %s on %s: %s forward(s) already sent earlier (same message_id); "
                "skipped",
                self.message_id,
                self.queue,
                result.skipped,
            )
        if not result.acked:
            logger.info(
                "ack of message %s on %s: it was no longer pending (acknowledged by another "
                "holder after this lease was lost)",
                self.message_id,
                self.queue,
            )

    async def nack(self, *, delay: float = 0.0) -> None:
        """Requeue the message, due after ``delay`` seconds, with its attempt count carried.

        Does nothing when this delivery lost its lease (the new holder decides).
        """
        await self._settle("nack", lambda: self._nack(delay))

    async def _nack(self, delay: float) -> None:
        loop = self._loop
        if self._released("nack"):
            return
        max_deliveries = int(loop.transport.max_deliveries)
        outcome = await loop.transport.run_script(
            "nack",
            loop.script_keys,
            [
                CONSUMER_GROUP,
                loop.name,
                self.entry_id,
                delay_ms(delay),
                uuid.uuid4().hex,
                max_deliveries,
                self.queue,
                self.count,
            ],
        )
        if int(outcome) == 0:
            logger.info(
                "nack of message %s on %s after its lease was lost: nothing requeued",
                self.message_id,
                self.queue,
            )
        elif int(outcome) == 2:
            logger.warning(
                "dead-lettered message %s from %s: no deliveries left (max_deliveries=%s)",
                self.message_id,
                self.queue,
                max_deliveries,
            )

    async def dead_letter(self, reason: str) -> None:
        """Move the message to its queue's dead-letter stream with ``reason``, atomically."""
        await self._settle("dead_letter", lambda: self._dead_letter(reason))

    async def _dead_letter(self, reason: str) -> None:
        if self._released("dead_letter"):
            return
        moved = await dead_letter_entry(
            self._loop, self.entry_id, reason, attempt=self.attempt, count=self.count
        )
        if moved:
            logger.warning(
                "dead-lettered message %s from %s: %s", self.message_id, self.queue, reason
            )
        else:
            logger.info(
                "dead_letter of message %s on %s after its lease was lost: left with its holder",
                self.message_id,
                self.queue,
            )

    async def extend(self) -> None:
        """Reset the entry's idle time (XCLAIM to itself, JUSTID) so it is not reclaimed.

        Raises LeaseLostError when another delivery (to any consumer) took the entry over or
        it was settled elsewhere, and once the transport disconnected (or the consume() loop
        closed): that released the entry for immediate redelivery. While Redis is merely
        unreachable a heartbeat is best effort: it logs a warning instead of raising; the
        lease may then run out and the message be redelivered, as at-least-once allows.
        """
        loop = self._loop
        if self.settled:
            return
        gone = loop.lease_gone
        if gone is not None:
            raise LeaseLostError(
                f"the lease of message {self.message_id} on {self.queue} was lost: {gone}"
            )
        try:
            kept = await loop.transport.run_script(
                "extend", [loop.stream], [CONSUMER_GROUP, loop.name, self.entry_id, self.count]
            )
        except TransportConnectionError as exc:
            logger.warning(
                "could not extend the lease of message %s on %s: %s",
                self.message_id,
                self.queue,
                exc,
            )
            return
        if not int(kept):
            loop.lost(self)
            raise LeaseLostError(
                f"the lease of message {self.message_id} on {self.queue} was lost: it ran out "
                f"(visibility_timeout={loop.transport.visibility_timeout}s) and the message "
                "was taken over, or settled, elsewhere"
            )
