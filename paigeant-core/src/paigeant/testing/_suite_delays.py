"""Conformance tests of delays: durable, on time, in due order, reaching waiting consumers."""

from __future__ import annotations

import asyncio
import random
import time

from ..transports.base import Transport
from ._receiver import Receiver
from ._suite_base import SuiteBase

__all__ = ["DelayTests"]


class DelayTests(SuiteBase):
    """publish(delay=) and nack(delay=): honoured, in due order, without head-of-line blocking."""

    async def test_publish_with_delay(self, transport: Transport) -> None:
        self.require_delays()
        queue = self.queue()
        started = time.monotonic()
        await self.publish(transport, queue, delay=1.0)
        async with Receiver(transport, queue) as receiver:
            delivery = await receiver.get(timeout=1.0 + self.redelivery_grace)
            assert delivery is not None
            assert time.monotonic() - started >= 0.9
            assert delivery.attempt == 1
            await delivery.ack()

    async def test_delayed_publish_reaches_a_consumer_already_waiting(
        self, transport: Transport
    ) -> None:
        self.require_delays()
        queue = self.queue()
        async with Receiver(transport, queue) as receiver:
            waiting = asyncio.ensure_future(receiver.get(timeout=2.0 + self.redelivery_grace))
            await asyncio.sleep(0.3)  # the consumer now waits on an empty queue
            assert not waiting.done()
            started = time.monotonic()
            await self.publish(transport, queue, delay=1.0)
            delivery = await waiting
            assert delivery is not None, "a delayed message never reached the waiting consumer"
            assert time.monotonic() - started >= 0.9, "the delay was not honoured"
            await delivery.ack()

    async def test_interleaved_delays_arrive_in_due_order(self, transport: Transport) -> None:
        """Long delays never hold back short ones: no head-of-line blocking, 0 s to 3 s."""
        self.require_delays()
        queue = self.queue()
        step = self.delay_resolution
        short = [step * k for k in range(1, 7)]
        random.shuffle(short)
        delays = [max(3.0, step * 8), *short, 0.0]  # the longest first, the immediate last
        published: dict[str, tuple[float, float]] = {}
        for index, delay in enumerate(delays):
            message_id = f"delay-{index}"
            published[message_id] = (delay, time.monotonic())
            await transport.publish(queue, str(delay).encode(), message_id=message_id, delay=delay)
        arrivals: list[tuple[float, float]] = []  # (delay, seconds after its publish)
        async with Receiver(transport, queue) as receiver:
            for _ in delays:
                delivery = await self.get(
                    receiver, max(delays) + self.redelivery_grace, what="a delayed message"
                )
                delay, at = published[delivery.message_id]
                arrivals.append((delay, time.monotonic() - at))
                assert delivery.attempt == 1
                await delivery.ack()
        order = [delay for delay, _ in arrivals]
        assert order == sorted(delays), f"delayed messages arrived out of due order: {order}"
        for delay, waited in arrivals:
            assert waited >= delay - 0.05, f"a {delay}s delay was delivered after {waited:.3f}s"
            assert waited <= delay + self.redelivery_grace, f"a {delay}s delay took {waited:.3f}s"
