"""A delivery from a JetStream work-queue consumer, leased by a local clock until settled.

JetStream matches acks by stream sequence only, so a zombie's late ack or nack would hit the
copy another consumer now holds. The transport's own clock (started when the message arrived,
erring early) decides whether this delivery still holds its lease.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from paigeant import (
    Delivery,
    LeaseLostError,
    Outgoing,
    TransportConnectionError,
    dead_letter_headers,
    dead_letter_queue,
    too_many_deliveries,
)

from ._codec import Metadata, encode, payload_size
from ._errors import is_no_responders

if TYPE_CHECKING:
    from ._consumer import ConsumeLoop
    from .transport import NatsTransport

__all__ = [
    "BODY_SHA256_HEADER",
    "HEADERS_DROPPED_HEADER",
    "MAX_REASON_BYTES",
    "MAX_REASON_CHARS",
    "TRUNCATED_FROM_HEADER",
    "NatsDelivery",
    "bounded_reason",
    "lease_margin",
    "park",
]

logger = logging.getLogger(__name__)

#: Longest dead-letter reason kept (a longer one is cut, ending in an ellipsis)...
MAX_REASON_CHARS = 500
#: ...and the most bytes it may take escaped as JSON (as it travels in Paigeant-Headers).
MAX_REASON_BYTES = 1500
#: On a dead letter whose original headers did not fit beside the dead-letter ones: how many
#: there were.
HEADERS_DROPPED_HEADER = "x-paigeant-dead-letter-headers-dropped"
#: On a dead letter too large to keep whole (another producer's message near max_payload):
#: the original body's length; the dead letter keeps its first bytes.
TRUNCATED_FROM_HEADER = "x-paigeant-dead-letter-truncated-from"
#: With ``TRUNCATED_FROM_HEADER``: the SHA-256 (hex) of the whole original body.
BODY_SHA256_HEADER = "x-paigeant-dead-letter-body-sha256"


def lease_margin(ack_wait: float) -> float:
    """How much earlier than the server the local lease runs out (its clock started first)."""
    return min(1.0, max(0.05, 0.05 * ack_wait))


async def park(
    transport: NatsTransport,
    queue: str,
    body: bytes,
    *,
    message_id: str,
    headers: Mapping[str, str],
    reason: str,
    attempt: int,
    source: Metadata,
) -> None:
    """Publish the dead letter of a message of ``queue`` (awaiting its PubAck); not the ack.

    Its ``Nats-Msg-Id`` names the source copy, so dead-lettering it again after a crash is
    deduplicated while a replayed message that fails again is not.
    """
    reason = bounded_reason(reason)
    dedup = f"dead:{source.stream}:{source.stream_seq}:{source.timestamp_ns}"
    limit = transport.connection.max_payload
    marked = dead_letter_headers(headers, reason=reason, queue=queue, attempt=attempt)
    nats_headers = encode(message_id, marked, dedup_id=dedup)
    if payload_size(body, nats_headers) > limit:
        # The original headers do not fit beside the dead-letter ones: keep the body.
        marked = dead_letter_headers({}, reason=reason, queue=queue, attempt=attempt)
        marked[HEADERS_DROPPED_HEADER] = str(len(headers))
        nats_headers = encode(message_id, marked, dedup_id=dedup)
    if payload_size(body, nats_headers) > limit:
        # Only another producer's message comes this close to max_payload (publish keeps
        # DEAD_LETTER_ROOM free). Parking what fits, saying what was cut, beats a message
        # that is redelivered forever and never dead-lettered.
        marked[TRUNCATED_FROM_HEADER] = str(len(body))
        marked[BODY_SHA256_HEADER] = hashlib.sha256(body).hexdigest()
        nats_headers = encode(message_id, marked, dedup_id=dedup)
        original = len(body)
        body = body[: max(limit - payload_size(b"", nats_headers), 0)]
        logger.error(
            "message %s from %s (%d bytes) is too large to dead-letter whole under the NATS "
            "server's max_payload of %d bytes: its dead letter keeps the first %d bytes",
            message_id,
            queue,
            original,
            limit,
            len(body),
        )
    target = dead_letter_queue(queue)
    await transport.store(target, body, nats_headers, what=f"cannot dead-letter {message_id!r}")


def bounded_reason(reason: str) -> str:
    """``reason`` cut to ``MAX_REASON_CHARS`` and ``MAX_REASON_BYTES``, ending in an ellipsis.

    The bytes count as the reason travels, escaped inside ``Paigeant-Headers`` (a non-ASCII
    character takes 6 bytes there, an emoji 12), so a dead letter's headers stay within
    ``DEAD_LETTER_ROOM`` whatever the reason says.
    """
    if len(reason) <= MAX_REASON_CHARS and len(json.dumps(reason)) <= MAX_REASON_BYTES:
        return reason
    cut = reason[: MAX_REASON_CHARS - 1]
    while len(json.dumps(cut + "\u2026")) > MAX_REASON_BYTES:
        cut = cut[: len(cut) * 3 // 4]
    return cut + "\u2026"


class NatsDelivery(Delivery):
    """One delivery of a JetStream message to a consume() loop."""

    def __init__(
        self,
        loop: ConsumeLoop,
        reply: str,
        source: Metadata,
        *,
        body: bytes,
        message_id: str,
        headers: Mapping[str, str],
        attempt: int,
        deadline: float,
    ) -> None:
        """Wrap the message whose ack subject is ``reply``; leased until ``deadline``."""
        self._loop = loop
        self.reply = reply
        self.source = source
        self.queue = loop.queue
        self.body = body
        self.message_id = message_id
        self.headers = headers
        self.attempt = attempt
        #: When the local lease runs out (monotonic clock); moved on by ``extend()``.
        self.deadline = deadline
        #: Set when the transport gave the message back (disconnect, delete_queue).
        self.released = False

    def __repr__(self) -> str:
        return (
            f"NatsDelivery(queue={self.queue!r}, message_id={self.message_id!r}, "
            f"stream_seq={self.source.stream_seq}, attempt={self.attempt})"
        )

    @property
    def lease_lost(self) -> bool:
        """Whether the lease ran out (or the transport released the message)."""
        return self.released or time.monotonic() >= self.deadline

    async def _confirm(self, command: bytes) -> None:
        """Send an ack-protocol ``command`` and wait until the server processed it."""
        await self._loop.transport.connection.confirm(self.reply, command)

    async def ack(self, *, forward: Sequence[Outgoing] = ()) -> None:
        """Publish ``forward`` (deduplicated by message id, every PubAck awaited), then +ACK.

        After the lease was lost the forwards are still published and the message is still
        acknowledged: the work is done, and the copy another consumer holds needs no rerun
        (its forwards carry the same ids and are deduplicated).
        """
        if await self._settle_once("ack", lambda: self._ack(forward)):
            self._loop.settled(self)

    async def _ack(self, forward: Sequence[Outgoing]) -> None:
        if self.released:
            self._log_lost("ack", "the transport gave it back; it is redelivered")
            return
        await self._forward(forward)
        lost = self.lease_lost
        await self._confirm(b"+ACK")
        if lost:
            self._log_lost("ack", "forwards published, message acknowledged")

    async def _forward(self, forward: Sequence[Outgoing]) -> None:
        publish = self._loop.transport.publish  # looked up now: tests may replace it
        publishes = [
            publish(
                out.queue,
                out.body,
                message_id=out.message_id,
                headers=out.headers,
                delay=out.delay,
                deduplicate=True,
            )
            for out in forward
        ]
        if len(publishes) == 1:
            await publishes[0]
        elif publishes:
            await asyncio.gather(*publishes)

    async def nack(self, *, delay: float = 0.0) -> None:
        """Redeliver after ``delay`` (through the delay stream when positive); counted attempts.

        At ``max_deliveries`` it dead-letters instead. After the lease was lost it does nothing.
        """
        if await self._settle_once("nack", lambda: self._nack(delay)):
            self._loop.settled(self)

    async def _nack(self, delay: float) -> None:
        if self.lease_lost:
            self._log_lost("nack", "nothing requeued")
            return
        transport = self._loop.transport
        if self.attempt >= transport.max_deliveries:
            await self._park(too_many_deliveries(self.attempt, transport.max_deliveries))
        elif delay > 0:
            source = self.source
            await transport.store_delayed(
                self.queue,
                self.body,
                message_id=self.message_id,
                headers=self.headers,
                delay=delay,
                attempt_base=self.attempt,
                dedup_id=f"nack:{source.stream}:{source.stream_seq}:{source.num_delivered}",
            )
            await self._confirm(b"+ACK")
        else:
            await self._confirm(b"-NAK")

    async def dead_letter(self, reason: str) -> None:
        """Publish the message to ``dead_letter_queue(queue)`` with ``reason``, then +ACK it."""
        if await self._settle_once("dead_letter", lambda: self._dead_letter(reason)):
            self._loop.settled(self)

    async def _dead_letter(self, reason: str) -> None:
        if self.lease_lost:
            self._log_lost("dead_letter", "left with its holder")
        else:
            await self._park(reason)

    async def _park(self, reason: str) -> None:
        await park(
            self._loop.transport,
            self.queue,
            self.body,
            message_id=self.message_id,
            headers=self.headers,
            reason=reason,
            attempt=self.attempt,
            source=self.source,
        )
        await self._confirm(b"+ACK")
        logger.warning(
            "dead-lettered message %s from %s: %s",
            self.message_id,
            self.queue,
            bounded_reason(reason),
        )

    async def extend(self) -> None:
        """Renew the lease (``+WPI``, confirmed by the server); LeaseLostError once it is gone.

        While NATS is unreachable it logs a warning instead; the lease may then run out.
        """
        if self.settled:
            return
        loop = self._loop
        if self.lease_lost:
            raise LeaseLostError(
                f"the lease of message {self.message_id} on {self.queue} was lost: it ran out "
                f"(visibility_timeout={loop.ack_wait}s) or the transport gave it back, and the "
                "message may be with another consumer"
            )
        started = time.monotonic()
        try:
            reply = await loop.transport.connection.confirm(self.reply, b"+WPI")
        except TransportConnectionError as exc:
            logger.warning(
                "could not extend the lease of message %s on %s: %s",
                self.message_id,
                self.queue,
                exc,
            )
            return
        if is_no_responders(reply):
            self.released = True
            raise LeaseLostError(
                f"the lease of message {self.message_id} on {self.queue} was lost: its queue's "
                "consumer is gone (the queue was deleted)"
            )
        self.deadline = started + loop.ack_wait - lease_margin(loop.ack_wait)
