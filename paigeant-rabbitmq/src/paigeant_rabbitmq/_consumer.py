"""A ``consume()`` loop: sessions opened (and opened again after outages), deliveries admitted.

Every message is checked before anyone sees it: past ``max_deliveries`` it is dead-lettered by
the transport with its reason; otherwise it becomes a delivery leased to the caller. A broken
channel or connection ends the session: its deliveries have lost their leases (the broker has
the messages back) and the loop opens a new session once the broker answers again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from aiormq.abc import DeliveredMessage
from aiormq.exceptions import AMQPChannelError, ChannelNotFoundEntity

from ._headers import attempt_of, delivered_headers, message_id_of
from ._link import CONNECTION_ERRORS, LinkClosedError
from ._names import is_dead_letter_queue
from ._session import Session
from .delivery import RabbitMQDelivery

if TYPE_CHECKING:
    from .transport import RabbitMQTransport

__all__ = ["ConsumeLoop"]

logger = logging.getLogger(__name__)

_FIRST_BACKOFF, _LAST_BACKOFF = 0.1, 5.0


class ConsumeLoop:
    """Deliveries of ``queue`` for one ``consume()`` call, at most ``prefetch`` unsettled."""

    def __init__(self, transport: RabbitMQTransport, queue: str, *, prefetch: int) -> None:
        """Consume ``queue`` through ``transport``; nothing happens before iterating."""
        self.transport = transport
        self.queue = queue
        self.prefetch = prefetch
        self.session: Session | None = None
        self._stopped = False
        self._wakeup = asyncio.Event()
        self._reads_dead_letters = is_dead_letter_queue(queue)

    @property
    def held(self) -> int:
        """Deliveries handed out and not settled (nor returned) yet."""
        return len(self.session.held) if self.session is not None else 0

    @property
    def waiting(self) -> int:
        """Messages the broker pushed that the loop's caller has not taken yet."""
        return len(self.session.waiting) if self.session is not None else 0

    def stop(self) -> None:
        """End the loop (the transport disconnects)."""
        self._stopped = True
        self._wakeup.set()

    async def shutdown(self) -> None:
        """End the loop and give back what it prefetched, even while its caller holds it."""
        self.stop()
        session = self.session
        if session is not None:
            await session.retire()

    async def _start(self) -> Session:
        transport = self.transport
        backoff = _FIRST_BACKOFF
        while True:
            session = Session(transport, self.queue, prefetch=self.prefetch, wake=self._wakeup.set)
            connection = await transport.link.connection()  # LinkClosedError ends the loop
            try:
                await transport.topology.ensure_queue(self.queue)
                await session.start(connection)
                return session
            except asyncio.CancelledError:
                raise
            except ChannelNotFoundEntity:  # deleted since it was declared
                transport.topology.forget(self.queue)
            except CONNECTION_ERRORS as exc:
                if transport.closing:
                    raise LinkClosedError("the transport disconnected") from exc
                logger.warning("cannot consume %s yet (%r); retrying", self.queue, exc)
                if not isinstance(exc, AMQPChannelError):  # the connection failed, not a channel
                    transport.link.broken(connection)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _LAST_BACKOFF)

    async def deliveries(self) -> AsyncIterator[RabbitMQDelivery]:
        """Yield deliveries until the transport disconnects; ride out broker outages."""
        try:
            while not self._stopped and not self.transport.closing:
                try:
                    self.session = session = await self._start()
                except LinkClosedError:
                    return
                while not self._stopped:
                    message = session.take()
                    if message is None:
                        if not session.open:
                            break  # the channel closed: open another
                        self._wakeup.clear()
                        await self._wakeup.wait()
                        continue
                    delivery = await self._admit(session, message)
                    if delivery is not None:
                        yield delivery
        finally:
            await self._close()

    async def _admit(self, session: Session, message: DeliveredMessage) -> RabbitMQDelivery | None:
        properties = message.header.properties
        table = properties.headers
        body = message.body
        attempt = attempt_of(table)
        transport = self.transport
        headers = delivered_headers(
            table, dead_letters=self._reads_dead_letters, delivery_limit=transport.delivery_limit
        )
        tag = message.delivery_tag
        assert tag is not None  # a Basic.Deliver always has one
        delivery = RabbitMQDelivery(
            session,
            tag,
            body=body,
            message_id=message_id_of(properties, body),
            headers=headers,
            attempt=attempt,
        )
        session.accept(delivery)
        if attempt <= transport.max_deliveries:
            return delivery
        try:
            await delivery.dead_letter_past_limit()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the lease runs out and the broker's limit is the backstop
            logger.warning(
                "could not dead-letter message %s of %s past max_deliveries: %r",
                delivery.message_id,
                self.queue,
                exc,
            )
        return None

    async def _close(self) -> None:
        session, self.session = self.session, None
        self.transport.forget_loop(self)
        if session is not None:
            await session.retire()
