"""Consuming through broker trouble: a consume loop that is opened again after it fails."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator

from .base import Delivery, Transport

__all__ = ["consume_resiliently"]

logger = logging.getLogger(__name__)

#: Longest pause between two attempts to open a failed consume loop again.
MAX_BACKOFF = 30.0


async def consume_resiliently(
    transport: Transport, queue: str, *, prefetch: int, first_backoff: float = 0.5
) -> AsyncGenerator[Delivery, None]:
    """Yield ``transport.consume(queue)``'s deliveries, opening the loop again when it fails.

    A transport rides out broker restarts by itself; when its loop raises anyway (a connection
    reset it did not absorb, a server error), the failure is logged and the loop opened again
    after a backoff (doubling from ``first_backoff`` up to 30 s, reset by each delivery). It
    ends when the transport disconnects (its loop ends).
    """
    backoff = first_backoff
    while True:
        iterator = transport.consume(queue, prefetch=prefetch)
        try:
            async for delivery in iterator:
                backoff = first_backoff
                yield delivery
            return  # the transport disconnected
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("consuming %s failed; retrying in %.1fs", queue, backoff)
        finally:
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, MAX_BACKOFF)
