"""The built-in in-memory transport: full Transport semantics inside one process, no polling."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import ClassVar

from ..errors import LeaseLostError
from .base import (
    BrowsedMessage,
    Delivery,
    Outgoing,
    QueueStats,
    Transport,
    dead_letter_headers,
    too_many_deliveries,
)
from .queues import dead_letter_queue

__all__ = ["InMemoryBroker", "InMemoryTransport"]

logger = logging.getLogger(__name__)


#: Numbers entries in the order they were published (browse lists oldest first).
_PUBLISHED = itertools.count()


class _Entry:
    """One message held by a queue, across all of its deliveries."""

    __slots__ = ("body", "deliveries", "done", "headers", "holder", "message_id", "number")

    def __init__(self, body: bytes, message_id: str, headers: Mapping[str, str]) -> None:
        self.body = body
        self.message_id = message_id
        self.headers = dict(headers)
        self.deliveries = 0
        self.done = False
        self.holder: _InMemoryDelivery | None = None
        self.number = next(_PUBLISHED)


class _Queue:
    """Ready, leased and delayed entries, plus the consumers waiting for one."""

    __slots__ = ("delayed", "leased", "ready", "waiters")

    def __init__(self) -> None:
        self.ready: deque[_Entry] = deque()
        self.leased: set[_Entry] = set()
        self.delayed: set[_Entry] = set()
        self.waiters: deque[asyncio.Future[None]] = deque()

    def stats(self) -> tuple[int, int, int]:
        """Live entries that are ready, leased and delayed."""
        return (
            sum(1 for entry in self.ready if not entry.done),
            sum(1 for entry in self.leased if not entry.done),
            sum(1 for entry in self.delayed if not entry.done),
        )

    def live(self) -> list[_Entry]:
        """Entries ready or leased (not delayed, not done), oldest first."""
        entries = {entry for entry in (*self.ready, *self.leased) if not entry.done}
        return sorted(entries, key=lambda entry: entry.number)

    def drop_all(self) -> None:
        """Forget every entry (delete_queue): ready, delayed and leased ones alike."""
        for entry in (*self.ready, *self.delayed, *self.leased):
            entry.done = True
        self.ready.clear()
        self.delayed.clear()

    def push(self, entry: _Entry, *, front: bool = False) -> None:
        if front:
            self.ready.appendleft(entry)
        else:
            self.ready.append(entry)
        self.wake_one()

    def wake_one(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def wake_all(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)


class InMemoryBroker:
    """Queues shared by every InMemoryTransport created with this broker."""

    def __init__(self) -> None:
        self.queues: dict[str, _Queue] = {}
        self.timers: set[asyncio.TimerHandle] = set()

    def queue(self, name: str) -> _Queue:
        """Return queue ``name``, creating it on first use."""
        queue = self.queues.get(name)
        if queue is None:
            queue = self.queues[name] = _Queue()
        return queue

    def enqueue(self, name: str, entry: _Entry, delay: float = 0.0) -> None:
        """Make ``entry`` ready on queue ``name`` now or after ``delay`` seconds."""
        if delay <= 0:
            self.queue(name).push(entry)
            return
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle
        queue = self.queue(name)
        queue.delayed.add(entry)

        def due() -> None:
            self.timers.discard(handle)
            queue.delayed.discard(entry)
            if not entry.done:
                queue.push(entry)

        handle = loop.call_later(delay, due)
        self.timers.add(handle)


class _Consumer:
    """Tracks one consume() loop's unsettled deliveries, for prefetch."""

    __slots__ = ("capacity_waiter", "held", "prefetch")

    def __init__(self, prefetch: int) -> None:
        self.prefetch = prefetch
        self.held: set[_InMemoryDelivery] = set()
        self.capacity_waiter: asyncio.Future[None] | None = None

    def release(self, delivery: _InMemoryDelivery) -> None:
        self.held.discard(delivery)
        waiter = self.capacity_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class _InMemoryDelivery(Delivery):
    __slots__ = ("_consumer", "_entry", "_timer", "_transport")

    def __init__(
        self, transport: InMemoryTransport, queue: str, entry: _Entry, consumer: _Consumer
    ) -> None:
        self._transport = transport
        self._entry = entry
        self._consumer = consumer
        self.queue = queue
        self.body = entry.body
        self.message_id = entry.message_id
        self.headers = entry.headers
        self.attempt = entry.deliveries
        self._timer: asyncio.TimerHandle | None = None
        self._start_lease()

    def _start_lease(self) -> None:
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._transport.visibility_timeout, self._lease_expired)

    def _holds_lease(self) -> bool:
        return self._entry.holder is self and not self._entry.done

    def _finish(self) -> None:
        """Give up the lease (settled, expired or released)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._entry.holder is self:
            self._entry.holder = None
            self._transport.broker.queue(self.queue).leased.discard(self._entry)
        self._consumer.release(self)
        self._transport._held.discard(self)

    def _lease_expired(self) -> None:
        self._timer = None
        if self._holds_lease():
            logger.warning(
                "lease of message %s on %s expired after %.1fs; redelivering",
                self.message_id,
                self.queue,
                self._transport.visibility_timeout,
            )
            self.release()

    def release(self) -> None:
        """Put the message back for redelivery at once (its consumer went away)."""
        if self._holds_lease():
            self._finish()
            self._transport.broker.queue(self.queue).push(self._entry, front=True)
        else:
            self._finish()

    def _lost(self, action: str, outcome: str) -> bool:
        """Whether the lease is gone (logged with ``outcome``); the delivery is finished then."""
        if self._holds_lease():
            return False
        self._log_lost(action, outcome)
        self._finish()
        return True

    async def ack(self, *, forward: Sequence[Outgoing] = ()) -> None:
        if not self._claim_settlement("ack"):
            return
        try:
            for out in forward:
                await self._transport.publish(
                    out.queue,
                    out.body,
                    message_id=out.message_id,
                    headers=out.headers,
                    delay=out.delay,
                )
        except BaseException:
            self._release_settlement()
            raise
        self._lost("ack", "forwards published, message acknowledged")
        self._entry.done = True
        self._finish()

    async def nack(self, *, delay: float = 0.0) -> None:
        if not self._claim_settlement("nack") or self._lost("nack", "nothing requeued"):
            return
        self._finish()
        transport = self._transport
        if self._entry.deliveries >= transport.max_deliveries:
            transport._dead_letter(
                self.queue,
                self._entry,
                too_many_deliveries(self._entry.deliveries, transport.max_deliveries),
                self.attempt,
            )
            return
        transport.broker.enqueue(self.queue, self._entry, delay)

    async def dead_letter(self, reason: str) -> None:
        if not self._claim_settlement("dead_letter") or self._lost(
            "dead_letter", "left with its holder"
        ):
            return
        self._finish()
        self._transport._dead_letter(self.queue, self._entry, reason, self.attempt)

    async def extend(self) -> None:
        if self.settled:
            return
        if not self._holds_lease():
            raise LeaseLostError(
                f"the lease of message {self.message_id} on {self.queue} was lost: it ran out "
                f"(visibility_timeout={self._transport.visibility_timeout}s) or the transport "
                "disconnected, and the message may be with another consumer"
            )
        if self._timer is not None:
            self._timer.cancel()
        self._start_lease()


class InMemoryTransport(Transport):
    """Transport whose queues live in this process: leases, redelivery, delays and dead letters."""

    crosses_processes: ClassVar[bool] = False

    def __init__(
        self,
        *,
        visibility_timeout: float = 30.0,
        max_deliveries: int = 10,
        broker: InMemoryBroker | None = None,
    ) -> None:
        """Create a transport; pass one ``broker`` to several transports to share queues."""
        if visibility_timeout <= 0:
            raise ValueError("visibility_timeout must be positive")
        if max_deliveries < 1:
            raise ValueError("max_deliveries must be at least 1")
        self.visibility_timeout = float(visibility_timeout)
        self.max_deliveries = int(max_deliveries)
        self._broker = broker or InMemoryBroker()
        self._connected = False
        self._held: set[_InMemoryDelivery] = set()

    @property
    def broker(self) -> InMemoryBroker:
        """The broker holding this transport's queues."""
        return self._broker

    async def connect(self) -> None:
        self._connected = True

    async def disconnect(self) -> None:
        if not self._connected:
            return
        self._connected = False
        for delivery in list(self._held):
            delivery.release()
        for queue in self._broker.queues.values():
            queue.wake_all()

    def _check_connected(self) -> None:
        if not self._connected:
            raise RuntimeError("transport is not connected: call `await transport.connect()` first")

    async def publish(
        self,
        queue: str,
        body: bytes,
        *,
        message_id: str,
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
    ) -> None:
        self._check_connected()
        self._broker.enqueue(queue, _Entry(bytes(body), message_id, headers or {}), delay)

    def _dead_letter(self, queue: str, entry: _Entry, reason: str, attempt: int) -> None:
        entry.done = True
        headers = dead_letter_headers(entry.headers, reason=reason, queue=queue, attempt=attempt)
        logger.warning("dead-lettered message %s from %s: %s", entry.message_id, queue, reason)
        self._broker.queue(dead_letter_queue(queue)).push(
            _Entry(entry.body, entry.message_id, headers)
        )

    async def _next_entry(self, queue: _Queue) -> _Entry | None:
        loop = asyncio.get_running_loop()
        while self._connected:
            while queue.ready:
                entry = queue.ready.popleft()
                if not entry.done:
                    return entry
            waiter: asyncio.Future[None] = loop.create_future()
            queue.waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    queue.wake_one()  # pass the wake-up on to another consumer
                raise
        return None

    async def _wait_capacity(self, consumer: _Consumer) -> None:
        while len(consumer.held) >= consumer.prefetch and self._connected:
            consumer.capacity_waiter = asyncio.get_running_loop().create_future()
            try:
                await consumer.capacity_waiter
            finally:
                consumer.capacity_waiter = None

    async def consume(self, queue: str, *, prefetch: int = 16) -> AsyncIterator[Delivery]:
        """Yield deliveries; closing the loop leaves held deliveries leased until settled or expired."""
        self._check_connected()
        if prefetch < 1:
            raise ValueError("prefetch must be at least 1")
        state = self._broker.queue(queue)
        consumer = _Consumer(prefetch)
        while True:
            await self._wait_capacity(consumer)
            entry = await self._next_entry(state)
            if entry is None:
                return
            entry.deliveries += 1
            if entry.deliveries > self.max_deliveries:
                made = entry.deliveries - 1
                self._dead_letter(
                    queue, entry, too_many_deliveries(made, self.max_deliveries), made
                )
                continue
            delivery = _InMemoryDelivery(self, queue, entry, consumer)
            entry.holder = delivery
            state.leased.add(entry)
            consumer.held.add(delivery)
            self._held.add(delivery)
            yield delivery

    async def delete_queue(self, queue: str) -> None:
        state = self._broker.queues.get(queue)
        if state is not None:
            state.drop_all()

    async def browse(self, queue: str, *, limit: int = 100) -> list[BrowsedMessage]:
        """Copies of the ready and leased messages, oldest first (by publish); nothing moves."""
        self._check_connected()
        if limit < 1:
            raise ValueError("limit must be at least 1")
        state = self._broker.queues.get(queue)
        if state is None:
            return []
        return [
            BrowsedMessage(queue, entry.message_id, entry.body, dict(entry.headers))
            for entry in state.live()[:limit]
        ]

    async def stats(self, queue: str) -> QueueStats:
        """Exact counts: ready, leased (until settled or expired), delayed, dead letters held."""
        self._check_connected()
        ready, in_flight, delayed = self._broker.queue(queue).stats()
        dead = sum(self._broker.queue(dead_letter_queue(queue)).stats())
        return QueueStats(ready=ready, in_flight=in_flight, delayed=delayed, dead=dead)
