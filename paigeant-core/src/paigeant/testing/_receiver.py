"""Receiver: one consumer of a queue for tests, with a timeout on each delivery."""

from __future__ import annotations

import asyncio

from ..transports.base import Delivery, Transport

__all__ = ["Receiver"]


class Receiver:
    """One consumer of a queue for tests: ``await receiver.get()`` the next delivery or None."""

    def __init__(self, transport: Transport, queue: str, *, prefetch: int = 16) -> None:
        self._iterator = transport.consume(queue, prefetch=prefetch)

    async def get(self, timeout: float = 5.0) -> Delivery | None:
        """Return the next delivery, or None after ``timeout`` (which ends this receiver)."""
        try:
            return await asyncio.wait_for(anext(self._iterator), timeout)
        except (TimeoutError, StopAsyncIteration):
            return None

    async def close(self) -> None:
        """Stop consuming; deliveries left unsettled come back when their lease runs out."""
        aclose = getattr(self._iterator, "aclose", None)
        if aclose is not None:
            await aclose()

    async def __aenter__(self) -> Receiver:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
