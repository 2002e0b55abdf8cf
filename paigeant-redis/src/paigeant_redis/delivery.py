"""A delivery read from a Redis stream; each way of settling it is one atomic Lua script."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from paigeant import Delivery, Outgoing, TransportConnectionError

from ._codec import delay_ms
from ._keys import CONSUMER_GROUP

if TYPE_CHECKING:
    from ._consumer import ConsumeLoop

__all__ = ["RedisDelivery", "dead_letter_entry"]

logger = logging.getLogger(__name__)


async def dead_letter_entry(loop: ConsumeLoop, entry_id: str, reason: str) -> bool:
    """Move ``loop``'s entry to the dead-letter stream (XADD+XACK+XDEL); False if not held."""
    outcome = await loop.transport.run_script(
        "dead_letter",
        [loop.stream, loop.dead_letter_stream],
        [CONSUMER_GROUP, loop.name, entry_id, reason, loop.queue],
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
    ) -> None:
        """Wrap stream entry ``entry_id`` delivered to ``loop``."""
        self._loop = loop
        self.entry_id = entry_id
        self.queue = loop.queue
        self.body = body
        self.message_id = message_id
        self.headers = headers
        self.attempt = attempt
        self._settled = False

    @property
    def consumer(self) -> str:
        """Name of the consumer in the stream's group that holds this delivery."""
        return self._loop.name

    @property
    def settled(self) -> bool:
        """Whether ack, nack or dead_letter has completed for this delivery."""
        return self._settled

    def __repr__(self) -> str:
        return (
            f"RedisDelivery(queue={self.queue!r}, message_id={self.message_id!r}, "
            f"entry_id={self.entry_id!r}, attempt={self.attempt})"
        )

    async def ack(self, *, forward: Sequence[Outgoing] = ()) -> None:
        """Add ``forward`` and XACK+XDEL this entry atomically; repeated forward ids skipped.

        Acks made while another is on the wire are sent together in one script call.
        """
        await self._loop.settle(self, self._ack(forward))
        self._settled = True

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
            logger.debug("ack of message %s on %s: no longer pending", self.message_id, self.queue)

    async def nack(self, *, delay: float = 0.0) -> None:
        """Requeue the message, due after ``delay`` seconds, with its attempt count carried."""
        await self._loop.settle(self, self._nack(delay))
        self._settled = True

    async def _nack(self, delay: float) -> None:
        loop = self._loop
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
            ],
        )
        if int(outcome) == 0:
            logger.debug(
                "nack of message %s on %s: lease already lost", self.message_id, self.queue
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
        await self._loop.settle(self, self._dead_letter(reason))
        self._settled = True

    async def _dead_letter(self, reason: str) -> None:
        if await dead_letter_entry(self._loop, self.entry_id, reason):
            logger.warning(
                "dead-lettered message %s from %s: %s", self.message_id, self.queue, reason
            )
        else:
            logger.debug(
                "dead_letter of message %s on %s: lease already lost", self.message_id, self.queue
            )

    async def extend(self) -> None:
        """Reset the entry's idle time (XCLAIM to itself, JUSTID) so it is not reclaimed.

        A heartbeat is best effort: while Redis is unreachable (or the transport is
        disconnected) it logs a warning instead of raising; the lease may then run out and the
        message be redelivered, as at-least-once allows.
        """
        loop = self._loop
        if self._settled or loop.transport.current_client() is None:
            return
        try:
            kept = await loop.transport.run_script(
                "extend", [loop.stream], [CONSUMER_GROUP, loop.name, self.entry_id]
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
            logger.warning(
                "extend of message %s on %s: the lease was already lost to another consumer",
                self.message_id,
                self.queue,
            )
