"""One consume() loop: its puller on the queue's durable consumer, leases, poison and sweeps."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import weakref
from typing import TYPE_CHECKING

from nats.aio.msg import Msg
from nats.errors import Error as NatsError

from paigeant import TransportConnectionError, too_many_deliveries

from ._codec import ForeignMessage, Metadata, decode, metadata
from ._names import WORKER
from ._puller import Puller
from .delivery import NatsDelivery, bounded_reason, lease_margin, park

if TYPE_CHECKING:
    from .transport import NatsTransport

__all__ = ["SWEEP_INTERVAL", "ConsumeLoop"]

logger = logging.getLogger(__name__)

#: Seconds between two sweeps for acknowledged messages a broker crash resurrected.
SWEEP_INTERVAL = 60.0
#: Seconds a failed dead-lettering waits before the message comes back to be tried again.
RETRY_PARK_SECONDS = 5.0

#: Expiry of a pull request for several messages while they flow: the longest a consume loop
#: may keep taking messages for a caller that stopped asking.
BURST_SECONDS = 0.1
#: Expiry of a pull request for one message on an idle queue.
IDLE_SECONDS = 2.0
#: Seconds to wait before recreating a queue whose consumer the server reported deleted.
RECREATE_DELAY = 1.0

#: Errors a consume loop rides out: the broker is away or answered with an error.
_OUTAGES = (TransportConnectionError, NatsError, OSError, TimeoutError)


class ConsumeLoop:
    """State and steps of one consume() loop; the transport's generator drives it."""

    def __init__(self, transport: NatsTransport, queue: str, prefetch: int) -> None:
        """Consume ``queue`` through its shared durable consumer, ``prefetch`` at a time."""
        self.transport = transport
        self.queue = queue
        self.prefetch = prefetch
        self.stream = transport.names.stream(queue)
        self.puller = Puller(self.stream, WORKER)
        self.held: set[NatsDelivery] = set()
        #: Unsettled deliveries whose lease ran out: they no longer count against prefetch.
        self.expired: weakref.WeakSet[NatsDelivery] = weakref.WeakSet()
        self.ack_wait = float(transport.visibility_timeout)
        self._generation = -1  # the transport connection the puller is attached to
        self._needs_setup = True
        self._next_sweep = 0.0
        self._failures = 0
        self.stopping = False
        self._renewal: asyncio.Future[None] | None = None

    # -- setup and recovery ------------------------------------------------------------------

    async def _setup(self) -> None:
        """Ensure stream and consumer, attach the puller to the current connection, sweep."""
        transport = self.transport
        self.ack_wait = float(transport.visibility_timeout)
        await transport.streams.ensure_worker(self.queue, self.ack_wait)
        if self._generation != transport.generation or self.puller.consumer_missing:
            await self.puller.attach(transport.connection.client)
            self._generation = transport.generation
        self._needs_setup = False
        await self._sweep()

    async def _sweep(self) -> None:
        self._next_sweep = time.monotonic() + SWEEP_INTERVAL
        try:
            await self.transport.streams.sweep(
                self.stream, self.transport.names.subject(self.queue), WORKER
            )
        except _OUTAGES as exc:
            logger.debug("sweeping %s failed: %s", self.stream, exc)

    async def _recover(self, exc: BaseException) -> None:
        self._needs_setup = True
        self._failures += 1
        if self._failures == 1:
            logger.warning(
                "NATS unavailable while consuming %s (%s: %s); retrying",
                self.queue,
                type(exc).__name__,
                exc,
            )
        await asyncio.sleep(min(2.0, 0.05 * 2 ** min(self._failures, 6)) * (0.5 + random.random()))

    def on_reconnected(self) -> None:
        """The client reconnected: pull requests may be gone, and a sweep is due."""
        self.puller.requests_lost()
        self._needs_setup = True
        self._renewal = asyncio.ensure_future(self._renew_held())

    async def _renew_held(self) -> None:
        """Renew every held lease at once: a broker crash may have lost recent renewals."""
        for delivery in list(self.held):
            if not delivery.settled and not delivery.lease_lost:
                try:
                    await self.transport.connection.send(delivery.reply, b"+WPI", None)
                except TransportConnectionError:
                    return

    # -- the loop ----------------------------------------------------------------------------

    async def next(self) -> NatsDelivery | None:
        """The next delivery, or None once the loop is stopped (disconnect)."""
        puller = self.puller
        while not self.stopping:
            puller.arm()
            try:
                if self._needs_setup or puller.consumer_missing:
                    if puller.consumer_missing:
                        logger.warning(
                            "consumer of queue %s is gone (the queue was deleted?); recreating it",
                            self.queue,
                        )
                        # The server says so while it still deletes the stream's files: a
                        # stream recreated at once would lose its own files to that deletion.
                        await asyncio.sleep(RECREATE_DELAY)
                    await self._setup()
                while puller.buffer and not self.stopping:
                    arrival, msg = puller.buffer.popleft()
                    delivery = await self._admit(arrival, msg)
                    if delivery is not None:
                        self._recovered()
                        return delivery
                await self._ask()
                if time.monotonic() >= self._next_sweep:
                    await self._sweep()
                await puller.wait()
            except asyncio.CancelledError:
                raise
            except _OUTAGES as exc:
                if self.stopping:
                    return None
                await self._recover(exc)
        return None

    async def _ask(self) -> None:
        """Request messages only while the caller waits, so few are held for an idle caller.

        A pull request lives on the server until it is served or expires; one left waiting
        would take messages (redeliveries too) for a caller that may not come back while
        other consumers wait. So while messages flow, ask for the free prefetch with a short
        expiry (``BURST_SECONDS``); once a request found nothing, wait for one message.
        """
        puller = self.puller
        if not puller.idle():
            return
        free = self._free()
        if free <= 0:  # a settle wakes the loop, or the first held lease running out
            if self.held:
                puller.wake_at(min(delivery.deadline for delivery in self.held))
            return
        if puller.delivered_since_request:
            await puller.request(free, expires=min(BURST_SECONDS, self.ack_wait / 4))
        else:
            await puller.request(1, expires=IDLE_SECONDS)

    def _recovered(self) -> None:
        if self._failures:
            logger.warning("NATS reachable again; consuming %s", self.queue)
            self._failures = 0

    def _free(self) -> int:
        """Slots for new deliveries: prefetch minus live leases and buffered messages."""
        now = time.monotonic()
        expired = [d for d in self.held if now >= d.deadline]
        for delivery in expired:  # an unsettled delivery whose lease ran out counts no more
            self.held.discard(delivery)
            self.expired.add(delivery)
        return self.prefetch - len(self.held) - len(self.puller.buffer)

    async def _admit(self, arrival: float, msg: Msg) -> NatsDelivery | None:
        """Turn an arrived message into a delivery, or dead-letter it (poison, foreign)."""
        source = metadata(msg.reply)
        try:
            message_id, headers, base = decode(msg.headers)
        except ForeignMessage as foreign:
            await self._reject(msg, source, foreign)
            return None
        attempt = base + source.num_delivered
        max_deliveries = self.transport.max_deliveries
        if attempt > max_deliveries:
            made = attempt - 1
            await self._dead_letter(
                msg, source, message_id, headers, too_many_deliveries(made, max_deliveries), made
            )
            return None
        now = time.monotonic()
        ack_wait = self.ack_wait
        deadline = arrival + ack_wait - lease_margin(ack_wait)
        if now >= deadline:
            logger.debug(
                "message %s on %s waited out its lease in the buffer", message_id, self.queue
            )
            return None
        if now - arrival > ack_wait / 3:  # it waited a while in the buffer: renew first
            await self.transport.connection.send(msg.reply, b"+WPI", None)
            deadline = now + ack_wait - lease_margin(ack_wait)
        delivery = NatsDelivery(
            self,
            msg.reply,
            source,
            body=msg.data,
            message_id=message_id,
            headers=headers,
            attempt=attempt,
            deadline=deadline,
        )
        self.held.add(delivery)
        return delivery

    async def _reject(self, msg: Msg, source: Metadata, foreign: ForeignMessage) -> None:
        """Dead-letter a message paigeant cannot read, keeping its NATS headers as headers."""
        kept = {k: v for k, v in (msg.headers or {}).items() if not k.startswith("Nats-")}
        message_id = foreign.message_id or f"nats:{source.stream}:{source.stream_seq}"
        await self._dead_letter(msg, source, message_id, kept, foreign.reason, source.num_delivered)

    async def _dead_letter(
        self,
        msg: Msg,
        source: Metadata,
        message_id: str,
        headers: dict[str, str],
        reason: str,
        attempt: int,
    ) -> None:
        """Dead-letter without handing it out; on failure it comes back to be tried again."""
        transport = self.transport
        try:
            await park(
                transport,
                self.queue,
                msg.data,
                message_id=message_id,
                headers=headers,
                reason=reason,
                attempt=attempt,
                source=source,
            )
            await transport.connection.confirm(msg.reply, b"+ACK")
        except Exception as exc:
            logger.error(
                "could not dead-letter message %s from %s (%s: %s); it comes back in %ss",
                message_id,
                self.queue,
                type(exc).__name__,
                exc,
                RETRY_PARK_SECONDS,
            )
            nak = f'-NAK {{"delay":{int(RETRY_PARK_SECONDS * 1e9)}}}'.encode()
            with contextlib.suppress(TransportConnectionError):  # else back after ack_wait
                await transport.connection.send(msg.reply, nak, None)
            return
        logger.warning(
            "dead-lettered message %s from %s: %s", message_id, self.queue, bounded_reason(reason)
        )

    # -- settlement and shutdown -------------------------------------------------------------

    def settled(self, delivery: NatsDelivery) -> None:
        """``delivery`` is settled: it frees its slot, and more may be pulled."""
        self.held.discard(delivery)
        self.puller.wake()  # a loop waiting for a free slot may ask for more now

    def stop(self) -> None:
        """End the loop (disconnect): ``next()`` returns None."""
        self.stopping = True
        self.puller.wake()

    async def close(self, *, release_held: bool) -> None:
        """Unsubscribe and give back what was never handed out; ``release_held``: also held.

        A closed loop's held deliveries stay leased (their consumer may still be working); at
        disconnect they are given back at once and later settles of them do nothing.
        """
        await self.puller.detach()
        replies = [msg.reply for _, msg in self.puller.buffer]
        self.puller.buffer.clear()
        if release_held:
            for delivery in list(self.held):
                if not delivery.settled and not delivery.lease_lost:
                    replies.append(delivery.reply)
                delivery.released = True
            for delivery in list(self.expired):
                delivery.released = True
            self.held.clear()
        for reply in replies:
            try:
                await self.transport.connection.send(reply, b"-NAK", None, cancellable=False)
            except (TransportConnectionError, RuntimeError):
                return  # they come back once their lease runs out
