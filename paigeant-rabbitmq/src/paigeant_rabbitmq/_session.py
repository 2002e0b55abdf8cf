"""Consumers on one channel: messages waiting to be taken, deliveries held, their leases.

A ``consume()`` loop runs one session at a time and opens a new one when the channel or the
connection breaks. Delivery tags belong to the channel: once it is gone its deliveries have
lost their leases (the broker requeued them), and a session never settles a tag twice.

RabbitMQ pushes up to ``prefetch`` unacknowledged messages to a consumer; paigeant's contract
is pull-shaped (at most ``prefetch`` unsettled, leases that run out). So a message pushed but
not yet taken by the loop's caller waits in ``waiting`` under a lease of its own, and a
delivery whose lease ran out while its holder still works on it (a "zombie") keeps its slot:
the consumer is paused while zombies fill the prefetch, so the message given back goes to
another consumer rather than to the one that is stuck (``_set_credit`` says how it comes back).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aio_pika.abc import AbstractChannel, AbstractConnection
from aiormq.abc import AbstractChannel as RawChannel
from aiormq.abc import DeliveredMessage

from ._link import CONNECTION_ERRORS, TIMEOUT_OR_CONNECTION_ERRORS, close_quietly
from .delivery import RabbitMQDelivery

if TYPE_CHECKING:
    from .transport import RabbitMQTransport

__all__ = ["Session"]

logger = logging.getLogger(__name__)

#: Longest a consumer change (cancel, qos, consume) may take before the channel is reopened.
_FLOW_TIMEOUT = 5.0


class Session:
    """A channel consuming ``queue`` with ``prefetch``; leases deliveries until settled."""

    def __init__(
        self,
        transport: RabbitMQTransport,
        queue: str,
        *,
        prefetch: int,
        wake: Callable[[], None],
    ) -> None:
        """Prepare to consume ``queue``; ``wake()`` is called when a message or the end comes."""
        self.transport = transport
        self.queue = queue
        self.visibility_timeout = transport.visibility_timeout
        self.prefetch = prefetch
        #: Messages pushed by the broker, not taken yet: tag -> (message, lease deadline).
        self.waiting: OrderedDict[int, tuple[DeliveredMessage, float]] = OrderedDict()
        #: Deliveries handed out and not settled yet, by delivery tag.
        self.held: dict[int, RabbitMQDelivery] = {}
        #: True from a successful ``start()`` until the channel closes.
        self.open = False
        #: True once the loop stopped taking messages (the consumer is cancelled).
        self.retired = False
        self._wake = wake
        self._zombies: set[RabbitMQDelivery] = set()
        #: Give-backs of waiting messages in flight (the reaper's and ``give_back``'s).
        self._returns: set[asyncio.Task[None]] = set()
        self._channel: AbstractChannel | None = None
        self._raw: RawChannel | None = None
        #: Live consumers of the channel and the prefetch each was made with (a ``basic.qos``
        #: reaches only consumers made after it, so a raise adds one; see ``_set_credit``).
        self._consumers: dict[str, int] = {}
        #: Which consumer each unsettled message was pushed to, by delivery tag.
        self._owner: dict[int, str] = {}
        self._flow = asyncio.Lock()
        self._reaper: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()

    @property
    def _interval(self) -> float:
        return max(min(self.visibility_timeout / 4, 1.0), 0.02)

    async def start(self, connection: AbstractConnection) -> None:
        """Open a channel on ``connection`` and start consuming."""
        channel = await connection.channel(publisher_confirms=False)
        self._channel = channel
        try:
            await channel.set_qos(prefetch_count=self.prefetch)
            raw = self._raw = await channel.get_underlay_channel()
            raw.on_consumer_cancel_callbacks.add(self._on_cancelled)
            channel.close_callbacks.add(self._on_closed)
            self.open = True
            consumed = await raw.basic_consume(self.queue, self._on_message, no_ack=False)
        except BaseException:
            await self.close()
            raise
        self._consumers[str(consumed.consumer_tag)] = self.prefetch
        self._reaper = self._loop.call_later(self._interval, self._reap)

    async def _on_message(self, message: DeliveredMessage) -> None:
        tag = message.delivery_tag
        if tag is None:
            return
        # Kept even once retired: retire() gives back what came before the cancel took effect.
        self.waiting[tag] = (message, time.monotonic() + self.visibility_timeout)
        self._owner[tag] = str(getattr(message.delivery, "consumer_tag", ""))
        self._wake()

    def _on_closed(self, *_: Any) -> None:
        if not self.open:
            return
        self.open = False
        if self._reaper is not None:
            self._reaper.cancel()
        if self.held and not self.transport.closing:
            logger.info(
                "channel consuming %s closed with %d unsettled deliveries; the broker "
                "redelivers them",
                self.queue,
                len(self.held),
            )
        self.held.clear()
        self.waiting.clear()
        self._zombies.clear()
        self._owner.clear()
        self._consumers.clear()
        self._wake()

    def _on_cancelled(self, *_: Any) -> None:
        logger.warning("RabbitMQ cancelled the consumer of %s (queue deleted?)", self.queue)
        self.transport.topology.forget(self.queue)
        self.transport.link.spawn(self.close())

    def take(self) -> DeliveredMessage | None:
        """The oldest waiting message, or None."""
        if not self.waiting:
            return None
        _, (message, _) = self.waiting.popitem(last=False)
        return message

    def accept(self, delivery: RabbitMQDelivery) -> None:
        """Hold ``delivery`` until it is settled or its lease runs out."""
        self.held[delivery.tag] = delivery

    def settled(self, delivery: RabbitMQDelivery) -> None:
        """``delivery`` is settled: stop holding it; a zombie frees its slot."""
        self.held.pop(delivery.tag, None)
        self._owner.pop(delivery.tag, None)
        if delivery in self._zombies:
            self._zombies.discard(delivery)
            self._adjust_flow()
        else:
            self._adjust_flow_if_behind()
        self._close_if_done()

    def _close_if_done(self) -> None:
        """Close a retired session once nothing is held, waiting or being given back.

        A message given back acknowledges its original on this channel: a close before that
        would have the broker requeue it (counted) beside its copy.
        """
        if self.retired and self.open and not (self.held or self.waiting or self._returns):
            self.transport.link.spawn(self.close())

    async def ack(self, delivery: RabbitMQDelivery) -> None:
        """Acknowledge ``delivery`` unless its lease was lost."""
        await self._settle(delivery, requeue=None)

    async def requeue(self, delivery: RabbitMQDelivery) -> None:
        """Give ``delivery`` back for redelivery now (the broker counts it)."""
        await self._settle(delivery, requeue=True)

    async def _settle(self, delivery: RabbitMQDelivery, *, requeue: bool | None) -> None:
        raw = self._raw
        if delivery.lease_lost or raw is None:
            return
        # wait=False: once the frame is queued nothing is awaited, so a cancellation either
        # comes before (nothing sent: the settle may be retried) or not at all.
        try:
            if requeue is None:
                await raw.basic_ack(delivery.tag, wait=False)
            else:
                await raw.basic_reject(delivery.tag, requeue=requeue, wait=False)
        except CONNECTION_ERRORS as exc:
            logger.info(
                "could not settle message %s on %s (the channel closed: %r); the broker "
                "redelivers it",
                delivery.message_id,
                self.queue,
                exc,
            )

    async def _reject(self, tag: int) -> None:
        raw = self._raw
        if not self.open or raw is None:
            return
        with contextlib.suppress(*CONNECTION_ERRORS):  # gone with the channel: requeued anyway
            await raw.basic_reject(tag, requeue=True, wait=False)

    async def give_back(self) -> None:
        """Return every waiting message to the broker (the loop closes), before the channel goes.

        Waits for the reaper's returns still in flight too: each acknowledges its original on
        this channel, and one the channel's close overtook would be requeued (counted) beside
        its copy.
        """
        for tag, (message, _) in self.waiting.items():
            self._start_return(tag, message)
        self.waiting.clear()
        if self._returns:
            await asyncio.wait(set(self._returns))

    def _start_return(self, tag: int, message: DeliveredMessage) -> None:
        task = self.transport.link.spawn(self._return_unseen(tag, message))
        self._returns.add(task)

        def returned(done: asyncio.Task[None]) -> None:
            self._returns.discard(done)
            self._close_if_done()

        task.add_done_callback(returned)

    async def _return_unseen(self, tag: int, message: DeliveredMessage) -> None:
        """Give back a message nobody took, without counting it as a delivery.

        A requeue would raise its broker-kept delivery count; a copy published with the
        deliveries it really had (then the original acknowledged) keeps ``attempt`` true.
        If that fails the message is requeued, counted.
        """
        raw = self._raw
        if not self.open or raw is None or self.transport.closing:
            return  # the broker gets it back with the channel
        try:
            await self.transport.publish_unseen(self.queue, message)
            await raw.basic_ack(tag, wait=False)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.info(
                "could not give back message on %s unseen (%r); requeueing it", self.queue, exc
            )
            await self._reject(tag)

    def _reap(self) -> None:
        self._reaper = self._loop.call_later(self._interval, self._reap)
        now = time.monotonic()
        returned = False
        for tag, (_, deadline) in list(self.waiting.items()):
            if now >= deadline:  # pushed but not taken in time: another consumer may
                message, _ = self.waiting.pop(tag)
                self._owner.pop(tag, None)
                self._start_return(tag, message)
                returned = True
        if returned:
            self._adjust_flow_if_behind()
        expired: list[int] = []
        for tag, delivery in list(self.held.items()):
            if delivery.settled or now < delivery.deadline:
                continue
            delivery.returned = True
            del self.held[tag]
            self._owner.pop(tag, None)
            self._zombies.add(delivery)
            expired.append(tag)
            logger.info(
                "lease of message %s on %s ran out (visibility_timeout=%ss); giving it back",
                delivery.message_id,
                self.queue,
                self.visibility_timeout,
            )
        if expired:
            self.transport.link.spawn(self._give_back_expired(expired))
        self._close_if_done()

    async def _give_back_expired(self, tags: list[int]) -> None:
        """Pause the consumer if the new zombies fill the prefetch, then requeue their messages."""
        await self._set_credit()
        for tag in tags:
            await self._reject(tag)

    def _wanted(self) -> int:
        return max(self.prefetch - len(self._zombies), 0)

    def _adjust_flow(self) -> None:
        if self.open and not self.retired:
            self.transport.link.spawn(self._set_credit())

    def _adjust_flow_if_behind(self) -> None:
        """After a pause, bring the consumers back up once there is room (cheap when it is not)."""
        if sum(self._consumers.values()) < self._wanted():
            self._adjust_flow()

    def _orphans(self) -> int:
        """Unsettled messages of cancelled consumers: no live consumer's prefetch counts them."""
        owners = self._owner
        live = self._consumers
        return sum(1 for tag in (*self.held, *self.waiting) if owners.get(tag) not in live)

    async def _set_credit(self) -> None:
        """Pause consuming while zombies fill the prefetch; come back without overshoot.

        A ``basic.qos`` reaches only consumers made after it (and a quorum queue refuses a
        global one), and a consumer's prefetch counts only its own messages. So: while some
        slots are zombies the consumers keep their prefetch (each zombie's message, given back,
        makes room for one message more); at zero every consumer is cancelled; below what is
        wanted (``prefetch`` less the zombies), a consumer is added for the room left once the
        live consumers' prefetch and the messages cancelled ones still hold are counted.
        Nothing is pushed beyond ``prefetch``; ``settled()`` asks again as room appears.
        """
        async with self._flow:
            raw, channel = self._raw, self._channel
            if not self.open or self.retired or raw is None or channel is None:
                return
            wanted = self._wanted()
            try:
                if wanted == 0:
                    for tag in list(self._consumers):
                        await asyncio.wait_for(raw.basic_cancel(tag), _FLOW_TIMEOUT)
                        del self._consumers[tag]
                    return
                # Whatever was pushed before a cancel took effect has arrived by now.
                room = wanted - sum(self._consumers.values()) - self._orphans()
                if room <= 0:
                    return
                await asyncio.wait_for(channel.set_qos(prefetch_count=room), _FLOW_TIMEOUT)
                consumed = await asyncio.wait_for(
                    raw.basic_consume(self.queue, self._on_message, no_ack=False), _FLOW_TIMEOUT
                )
                self._consumers[str(consumed.consumer_tag)] = room
            except TimeoutError:
                # The broker's state is unknown (a consumer we hold no tag of?): start afresh.
                logger.warning("RabbitMQ did not answer a flow change on %s; reopening", self.queue)
                self.transport.link.spawn(self.close())
            except CONNECTION_ERRORS as exc:
                logger.info("could not change the flow of %s: %r", self.queue, exc)

    async def retire(self) -> None:
        """Stop consuming; the channel stays open until every held delivery is settled."""
        if self.retired:
            return
        self.retired = True
        async with self._flow:  # not while _set_credit adds or cancels consumers
            raw = self._raw
            for tag in list(self._consumers):
                if self.open and raw is not None:
                    try:  # first: copies given back must not be pushed to this consumer again
                        await asyncio.wait_for(raw.basic_cancel(tag), 5)
                    except asyncio.CancelledError:
                        raise
                    except TIMEOUT_OR_CONNECTION_ERRORS:
                        pass
                self._consumers.pop(tag, None)
        await self.give_back()  # everything pushed before the cancel took effect
        if not self.held:
            await self.close()

    async def close(self) -> None:
        """Close the channel: the broker requeues whatever it still holds for it."""
        if self._reaper is not None:
            self._reaper.cancel()
        channel, self._channel = self._channel, None
        if channel is not None and not channel.is_closed:
            await close_quietly(channel)
        self._raw = None
        self._on_closed()
