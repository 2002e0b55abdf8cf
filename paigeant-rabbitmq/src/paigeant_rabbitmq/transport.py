"""RabbitMQTransport: paigeant's Transport over RabbitMQ quorum queues, with no broker plugins."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Mapping
from typing import ClassVar

from aiormq.abc import DeliveredMessage
from pamqp.commands import Basic

from paigeant import (
    Delivery,
    QueueStats,
    Transport,
    dead_letter_headers,
    dead_letter_queue,
    redact_url,
)

from ._consumer import ConsumeLoop
from ._errors import NegativeConfirmError, UnroutableError
from ._headers import attempt_of, delivered_headers, message_id_of, properties
from ._link import Link
from ._names import (
    DELAY_LEVELS,
    delay_bits,
    delay_exchange,
    delay_queue,
    delay_routing_key,
    is_dead_letter_queue,
    to_milliseconds,
    validate_queue,
)
from ._publisher import Publisher
from ._topology import Topology
from .delivery import RabbitMQDelivery

__all__ = ["DEFAULT_PUBLISH_TIMEOUT", "DEFAULT_URL", "RabbitMQTransport"]

logger = logging.getLogger(__name__)

#: Used when neither ``url=`` nor ``PAIGEANT_RABBITMQ_URL`` is given.
DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"
#: Seconds ``publish`` waits (reconnecting if it must) before TransportConnectionError.
DEFAULT_PUBLISH_TIMEOUT = 5.0
_NOT_CONNECTED = "transport is not connected: call `await transport.connect()` first"
#: Pauses between publishes a queue still starting refused.
_STARTING_FIRST_PAUSE = 0.005
_STARTING_MAX_PAUSE = 0.25


class RabbitMQTransport(Transport):
    """Queues as RabbitMQ quorum queues; leases kept by the transport; a TTL-ladder for delays."""

    crosses_processes: ClassVar[bool] = True

    def __init__(
        self,
        *,
        url: str | None = None,
        visibility_timeout: float = 30.0,
        max_deliveries: int = 10,
        delivery_limit: int | None = None,
        publish_timeout: float = DEFAULT_PUBLISH_TIMEOUT,
        connect_timeout: float = 2.0,
        connect_attempts: int = 3,
    ) -> None:
        """Configure the transport; nothing connects until ``connect()``.

        Args:
            url: AMQP URL; else ``PAIGEANT_RABBITMQ_URL``, else
                ``amqp://guest:guest@127.0.0.1:5672/``.
            visibility_timeout: Seconds a delivery stays leased without ``extend()``; then the
                transport gives the message back to the broker for redelivery.
            max_deliveries: Deliveries after which the transport dead-letters a message.
            delivery_limit: The work queues' ``x-delivery-limit``, the broker's backstop for a
                message whose consumers keep dying; default ``max_deliveries``. Fixed when a
                queue is first declared.
            publish_timeout: Longest ``publish`` waits for the broker's confirm, reconnecting
                included, before it raises TransportConnectionError.
            connect_timeout: Seconds per connection attempt.
            connect_attempts: Attempts ``connect()`` makes before it raises
                TransportConnectionError; once connected, reconnects never stop.
        """
        self.url = url or os.environ.get("PAIGEANT_RABBITMQ_URL", "").strip() or DEFAULT_URL
        if not self.url.startswith(("amqp://", "amqps://")):
            raise ValueError(
                f"unsupported RabbitMQ URL {redact_url(self.url)!r}: use amqp:// or amqps://"
            )
        for name, value in (
            ("visibility_timeout", visibility_timeout),
            ("publish_timeout", publish_timeout),
            ("connect_timeout", connect_timeout),
        ):
            if value <= 0:
                raise ValueError(f"{name} must be positive")
        if max_deliveries < 1:
            raise ValueError("max_deliveries must be at least 1")
        if delivery_limit is not None and delivery_limit < 1:
            raise ValueError("delivery_limit must be at least 1")
        if connect_attempts < 1:
            raise ValueError("connect_attempts must be at least 1")
        self.visibility_timeout = float(visibility_timeout)
        self.max_deliveries = int(max_deliveries)
        self._delivery_limit = delivery_limit
        self.publish_timeout = float(publish_timeout)
        self.link = Link(
            self.url, connect_timeout=float(connect_timeout), connect_attempts=int(connect_attempts)
        )
        self.topology = Topology(
            self.link, delivery_limit=self.delivery_limit, timeout=self.publish_timeout
        )
        self.publisher = Publisher(self.link, timeout=self.publish_timeout)
        #: True from ``disconnect()`` until the next ``connect()``.
        self.closing = False
        self._loops: set[ConsumeLoop] = set()

    def __repr__(self) -> str:
        return f"RabbitMQTransport(url={self.link.safe_url!r})"

    @property
    def delivery_limit(self) -> int:
        """The ``x-delivery-limit`` this transport declares work queues with."""
        return self._delivery_limit or self.max_deliveries

    async def connect(self) -> None:
        """Connect to RabbitMQ; TransportConnectionError (naming the host) if unreachable."""
        self.closing = False
        self.topology.delivery_limit = self.delivery_limit  # max_deliveries may have changed
        await self.link.open()

    async def disconnect(self) -> None:
        """End consume loops and close the connection; the broker requeues unsettled messages."""
        if self.closing and self.link.closed:
            return
        loops = list(self._loops)
        if loops:  # stop them and give back what they prefetched, while publishing still works
            done, pending = await asyncio.wait(
                [asyncio.ensure_future(loop.shutdown()) for loop in loops], timeout=5
            )
            for unfinished in pending:  # the broker gets those messages back with the channel
                unfinished.cancel()
            for finished in done:
                if not finished.cancelled() and finished.exception() is not None:
                    logger.info(
                        "a consume loop did not shut down cleanly: %r", finished.exception()
                    )
        self.closing = True
        await self.publisher.close()
        await self.topology.close()
        await self.link.close()

    def _require_connected(self) -> None:
        if self.link.closed:
            raise RuntimeError(_NOT_CONNECTED)

    async def publish(
        self,
        queue: str,
        body: bytes,
        *,
        message_id: str,
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
    ) -> None:
        """Publish to ``queue`` (declared if new), due after ``delay``; back once confirmed.

        Raises TransportConnectionError when RabbitMQ stays unreachable for
        ``publish_timeout`` seconds, UnroutableError or PublishRefusedError when it does not
        take the message.
        """
        await self._send(queue, body, properties(message_id, headers or {}), delay)

    async def _send(self, queue: str, body: bytes, props: Basic.Properties, delay: float) -> None:
        self._require_connected()
        validate_queue(queue)
        ms = to_milliseconds(delay)
        topology = self.topology
        deadline = time.monotonic() + self.publish_timeout
        pause = _STARTING_FIRST_PAUSE
        declared_again = False
        while True:
            await topology.ensure_queue(queue)
            if ms:
                levels = delay_bits(ms)
                await topology.ensure_delays(queue, levels)
                exchange, routing_key = delay_exchange(levels[0]), delay_routing_key(queue, ms)
            else:
                exchange, routing_key = "", queue
            try:
                await self.publisher.publish(exchange, routing_key, body, props, target=queue)
                return
            except UnroutableError:
                if declared_again:
                    raise
                declared_again = True
                topology.forget(queue)  # deleted since it was declared: declare it again
            except NegativeConfirmError:
                # Nothing was queued, so sending again is safe; a queue declared a moment ago
                # may be one another client is still starting (see Topology.starting).
                into = delay_queue(queue, levels[0]) if ms else queue
                if not topology.starting(into) or time.monotonic() + pause > deadline:
                    raise
                await asyncio.sleep(pause)
                pause = min(pause * 2, _STARTING_MAX_PAUSE)

    async def publish_again(self, delivery: RabbitMQDelivery, *, delay: float) -> None:
        """Publish ``delivery``'s message again after ``delay``, carrying its attempt count."""
        props = properties(delivery.message_id, delivery.headers, attempts=delivery.attempt)
        await self._send(delivery.queue, delivery.body, props, delay)

    async def publish_unseen(self, queue: str, message: DeliveredMessage) -> None:
        """Publish a copy of ``message`` (pushed, never handed out) with its true attempt count."""
        props, body = message.header.properties, message.body
        table = props.headers
        headers = delivered_headers(
            table, dead_letters=is_dead_letter_queue(queue), delivery_limit=self.delivery_limit
        )
        copy = properties(message_id_of(props, body), headers, attempts=attempt_of(table) - 1)
        await self._send(queue, body, copy, 0.0)

    async def park(self, delivery: RabbitMQDelivery, reason: str, *, attempt: int) -> None:
        """Publish ``delivery``'s dead letter to ``dead_letter_queue`` (confirmed); not the ack."""
        target = dead_letter_queue(delivery.queue)
        marked = dead_letter_headers(
            delivery.headers, reason=reason, queue=delivery.queue, attempt=attempt
        )
        await self._send(target, delivery.body, properties(delivery.message_id, marked), 0.0)

    def consume(self, queue: str, *, prefetch: int = 16) -> AsyncIterator[Delivery]:
        """Consume ``queue`` (declared if new) with at most ``prefetch`` unsettled deliveries."""
        self._require_connected()
        validate_queue(queue)
        if prefetch < 1:
            raise ValueError("prefetch must be at least 1")
        loop = ConsumeLoop(self, queue, prefetch=prefetch)
        self._loops.add(loop)
        return loop.deliveries()

    def forget_loop(self, loop: ConsumeLoop) -> None:
        """A consume loop ended."""
        self._loops.discard(loop)

    async def delete_queue(self, queue: str) -> None:
        """Delete ``queue`` and its delayed messages (its dead letters stay)."""
        self._require_connected()
        validate_queue(queue)
        await self.topology.delete(queue)

    async def stats(self, queue: str) -> QueueStats:
        """Ready and dead from passive declares, delayed from the queue's delay queues.

        Messages the broker pushed to this transport's consumers but not handed out yet count
        as ready. ``in_flight`` counts the deliveries this transport's consume loops hold: AMQP reports
        a queue's ready messages only, so another process's unsettled ones are not counted.
        """
        self._require_connected()
        validate_queue(queue)
        topology = self.topology
        ready = await topology.depth(queue)
        ready += sum(loop.waiting for loop in self._loops if loop.queue == queue)
        delayed = 0
        for level in range(DELAY_LEVELS):
            delayed += await topology.depth(delay_queue(queue, level))
        dead = await topology.depth(dead_letter_queue(queue))
        in_flight = sum(loop.held for loop in self._loops if loop.queue == queue)
        return QueueStats(ready=ready, in_flight=in_flight, delayed=delayed, dead=dead)
