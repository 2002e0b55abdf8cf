"""Declaring, inspecting and deleting the queues, exchanges and bindings of ``_names``.

Declarations are idempotent on the broker and remembered here, so each is made once per
transport (again after ``forget``, when a publish found a queue gone). A queue that already
exists with other arguments (another ``max_deliveries``, a classic queue made by hand) makes the
broker close the channel with PRECONDITION_FAILED; the queue is then used as it is, with a
warning, since re-creating it would delete its messages.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiormq.abc import AbstractChannel as RawChannel
from aiormq.exceptions import AMQPChannelError, ChannelNotFoundEntity, ChannelPreconditionFailed
from pamqp.commands import Queue

from paigeant import TransportConnectionError, dead_letter_queue

from ._channels import KeptChannel
from ._link import CONNECTION_ERRORS, Link, LinkClosedError
from ._names import (
    DELAY_LEVELS,
    DELIVER_EXCHANGE,
    dead_letter_queue_arguments,
    delay_exchange,
    delay_queue,
    delay_queue_arguments,
    deliver_binding,
    is_dead_letter_queue,
    level_binding,
    pass_binding,
    work_queue_arguments,
)

__all__ = ["QUEUE_START_GRACE", "Topology"]

logger = logging.getLogger(__name__)

#: Seconds after declaring a queue in which a negative confirm may mean it is still starting.
QUEUE_START_GRACE = 2.0

_T = TypeVar("_T")


class Topology:
    """What the transport declared on the broker, and the means to declare, count and delete."""

    def __init__(self, link: Link, *, delivery_limit: int, timeout: float) -> None:
        """Declare on ``link``; work queues get ``x-delivery-limit = delivery_limit``.

        Each broker operation gives up after ``timeout`` seconds, reconnects included.
        """
        self._link = link
        self.timeout = timeout
        self.delivery_limit = delivery_limit
        self._channel = KeptChannel(link, confirms=False)
        #: Passive declares (``depth``) close their channel on a missing queue: a channel apart.
        self._inspect = KeptChannel(link, confirms=False)
        self._serial = asyncio.Lock()
        #: What was declared (or is being declared), by what it is: ("queue", name), ...
        self._declared: dict[tuple[Any, ...], asyncio.Future[None]] = {}
        self._mismatch_warned: set[str] = set()
        #: When this transport last declared each queue (time.monotonic()).
        self._declared_at: dict[str, float] = {}

    async def _run(
        self, operation: Callable[[RawChannel], Awaitable[_T]], *, inspect: bool = False
    ) -> _T:
        """Run ``operation`` on the declaring channel, retrying across reconnects.

        A channel error (PRECONDITION_FAILED, NOT_FOUND) is the broker's answer and raised as it
        is; a broken or unreachable connection is retried until ``timeout`` has passed, then
        raised as TransportConnectionError.
        """
        deadline = time.monotonic() + self.timeout
        kept = self._inspect if inspect else self._channel
        while True:
            try:
                # One operation at a time: a channel error must reach the operation it is for.
                async with asyncio.timeout(max(deadline - time.monotonic(), 0.001)), self._serial:
                    channel = await kept.get(deadline)
                    return await operation(channel)
            except (AMQPChannelError, LinkClosedError):
                kept.broken()
                raise
            except TimeoutError as exc:
                kept.broken()
                raise TransportConnectionError(
                    f"RabbitMQ at {self._link.host} did not answer within {self.timeout}s"
                ) from exc
            except CONNECTION_ERRORS as exc:  # TransportConnectionError from get() included
                await kept.retry_after(
                    exc, deadline, f"RabbitMQ at {self._link.host} is unreachable: {exc!r}"
                )

    async def _once(self, key: tuple[Any, ...], make: Callable[[], Awaitable[None]]) -> None:
        """Run ``make()`` once for ``key`` (again after it failed), in a task of its own.

        The task is shared by everyone who needs it and shielded from their cancellation: a
        consumer cancelled while its queue is declared must not cancel the others' wait.
        """
        task = self._declared.get(key)
        if task is not None and task.done() and not task.cancelled() and not task.exception():
            return  # the common case: declared long ago
        if task is None:
            task = asyncio.ensure_future(make())
            self._declared[key] = task

            def forget_failure(done: asyncio.Future[None]) -> None:
                if (done.cancelled() or done.exception()) and self._declared.get(key) is done:
                    del self._declared[key]

            task.add_done_callback(forget_failure)
        await asyncio.shield(task)

    async def _declare_queue(self, name: str, arguments: dict[str, Any]) -> None:
        try:
            await self._run(
                lambda channel: channel.queue_declare(name, durable=True, arguments=arguments)
            )
        except ChannelPreconditionFailed as exc:
            await self._run(lambda channel: channel.queue_declare(name, passive=True))
            if name not in self._mismatch_warned:
                self._mismatch_warned.add(name)
                logger.warning(
                    "queue %s already exists with other arguments than %s (%s); using it as it "
                    "is. Delete it (losing its messages) to have it declared again",
                    name,
                    arguments,
                    exc.args[0] if exc.args else exc,
                )
        self._declared_at[name] = time.monotonic()

    async def ensure_queue(self, queue: str) -> None:
        """Declare ``queue`` (quorum) and, before it, its dead-letter queue; once.

        A dead-letter queue itself (``…dead-letter``, consumed to read dead letters) is declared
        as one: no dead-letter queue of its own, no delivery limit.
        """
        if is_dead_letter_queue(queue):
            await self._once(
                ("queue", queue),
                lambda: self._declare_queue(queue, dead_letter_queue_arguments()),
            )
            return

        async def declare() -> None:
            await self.ensure_queue(dead_letter_queue(queue))
            await self._declare_queue(queue, work_queue_arguments(queue, self.delivery_limit))
            # Bound with every declaration: whoever declares the queue again (after it was
            # deleted by hand) also restores the route of delayed messages waiting for it.
            await self._once(("deliver-exchange",), self._declare_deliver_exchange)
            await self._bind_deliver(queue)

        await self._once(("queue", queue), declare)

    async def _declare_deliver_exchange(self) -> None:
        await self._run(
            lambda channel: channel.exchange_declare(
                DELIVER_EXCHANGE, exchange_type="topic", durable=True
            )
        )

    async def _declare_ladder(self) -> None:
        await self._once(("deliver-exchange",), self._declare_deliver_exchange)

        async def declare(channel: RawChannel) -> None:
            for level in range(DELAY_LEVELS):
                await channel.exchange_declare(
                    delay_exchange(level), exchange_type="topic", durable=True
                )
                below = delay_exchange(level - 1) if level else DELIVER_EXCHANGE
                await channel.exchange_bind(
                    destination=below, source=delay_exchange(level), routing_key=pass_binding(level)
                )

        await self._run(declare)

    async def ensure_delays(self, queue: str, levels: list[int]) -> None:
        """Declare the delay exchanges (once) and ``queue``'s delay queues of ``levels``.

        ``queue`` itself (declared first, by ``ensure_queue``) is already bound to the end of
        the ladder.
        """
        await self._once(("ladder",), self._declare_ladder)
        for level in levels:
            await self._once(
                ("delay", queue, level), functools.partial(self._declare_delay, queue, level)
            )

    async def _bind_deliver(self, queue: str) -> None:
        await self._run(
            lambda channel: channel.queue_bind(
                queue, DELIVER_EXCHANGE, routing_key=deliver_binding(queue)
            )
        )

    async def _declare_delay(self, queue: str, level: int) -> None:
        name = delay_queue(queue, level)
        await self._declare_queue(name, delay_queue_arguments(level))
        await self._run(
            lambda channel: channel.queue_bind(
                name, delay_exchange(level), routing_key=level_binding(queue, level)
            )
        )

    def starting(self, name: str) -> bool:
        """Whether queue ``name`` may still be starting: declared here ``QUEUE_START_GRACE`` ago
        or less.

        A quorum queue another client is declaring at the same moment is declare-ok'd to this
        one ("exists") before its Raft members run, and refuses publishes until they do.
        """
        declared = self._declared_at.get(name)
        return declared is not None and time.monotonic() - declared < QUEUE_START_GRACE

    def forget(self, queue: str) -> None:
        """Declare ``queue`` (and its delay bindings) again next time: it was found missing."""
        for key in [key for key in self._declared if key[1:2] == (queue,)]:
            del self._declared[key]

    async def _peek(self, name: str) -> Queue.DeclareOk | None:
        """A passive declare of queue ``name`` (its counts), or None when it does not exist."""
        try:
            return await self._run(
                lambda channel: channel.queue_declare(name, passive=True), inspect=True
            )
        except ChannelNotFoundEntity:
            return None

    async def depth(self, name: str) -> int:
        """Ready messages in queue ``name`` (a passive declare); 0 when it does not exist."""
        declared = await self._peek(name)
        return int(declared.message_count or 0) if declared is not None else 0

    async def delete(self, queue: str) -> None:
        """Delete ``queue`` and its delay queues; missing ones are fine.

        Its dead-letter queue goes too when it is empty (every work queue has one, declared
        before it: a reply queue would otherwise leave one behind); dead letters stay.
        """
        self.forget(queue)
        for name in [queue, *(delay_queue(queue, level) for level in range(DELAY_LEVELS))]:
            await self._delete_one(name)
        if not is_dead_letter_queue(queue):
            await self._delete_if_empty(dead_letter_queue(queue))

    async def _delete_one(self, name: str) -> None:
        await self._run(lambda channel: channel.queue_delete(name))

    async def _delete_if_empty(self, name: str) -> None:
        """Delete queue ``name`` if it has no message and no consumer (or is missing).

        Quorum queues refuse ``if_empty`` (NOT_IMPLEMENTED, closing the connection), so a
        passive declare looks first: a message arriving in the moment between the two would be
        lost, which is why ``delete_queue`` asks for the queue's workers to be stopped first.
        """
        self.forget(name)
        declared = await self._peek(name)
        if declared is None:
            return
        if declared.message_count or declared.consumer_count:
            return  # it holds dead letters (or someone reads them): they stay
        await self._delete_one(name)

    async def close(self) -> None:
        """Close the declaring and inspecting channels."""
        await self._channel.close()
        await self._inspect.close()
