"""Conformance chaos test: messages through three hops while consumers are cancelled mid-step."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter

import pytest

from ..transports.base import Delivery, Outgoing, Transport
from ._suite_base import SuiteBase

__all__ = ["ChaosTests"]

#: Most consumers the chaos test cancels; then it lets the work finish.
MAX_CANCELLATIONS = 30
#: Consumers serving each hop at any time.
CONSUMERS_PER_HOP = 2


class _Hop:
    """The consumers of one hop: each takes a message, works a little, then forwards it."""

    def __init__(self, transport: Transport, source: str, target: str, index: int) -> None:
        self.transport = transport
        self.source = source
        self.target = target
        self.index = index
        #: Consumer task -> the delivery it is working on (None between steps).
        self.busy: dict[asyncio.Task[None], Delivery | None] = {}

    def start(self) -> None:
        task = asyncio.ensure_future(self._consume())
        self.busy[task] = None

    async def _consume(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        iterator = self.transport.consume(self.source, prefetch=2)
        try:
            async for delivery in iterator:
                self.busy[task] = delivery
                await asyncio.sleep(random.uniform(0.001, 0.01))  # the step's work
                hop_id = f"{delivery.body.decode()}.{self.index}"  # deterministic per hop
                await delivery.ack(forward=[Outgoing(self.target, delivery.body, hop_id)])
                self.busy[task] = None
        finally:
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                await aclose()

    def mid_step(self) -> list[asyncio.Task[None]]:
        return [task for task, held in self.busy.items() if held is not None and not task.done()]

    async def cancel(self, task: asyncio.Task[None]) -> None:
        """Cancel one consumer mid-step and start a replacement."""
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        del self.busy[task]
        self.start()

    async def stop(self) -> None:
        for task in self.busy:
            task.cancel()
        await asyncio.gather(*self.busy, return_exceptions=True)


class ChaosTests(SuiteBase):
    """Nothing is lost while consumers die at random; duplicates stay bounded by the deaths."""

    async def test_chaos_cancelled_consumers_lose_nothing(self, transport: Transport) -> None:
        total = self.chaos_messages
        queues = [self.queue() for _ in range(4)]  # three hops, then the end
        for n in range(total):
            await transport.publish(queues[0], f"chaos-{n}".encode(), message_id=f"chaos-{n}")
        hops = [_Hop(transport, queues[i], queues[i + 1], i + 1) for i in range(3)]
        arrived: Counter[str] = Counter()
        all_arrived = asyncio.Event()

        async def collect() -> None:
            async for delivery in transport.consume(queues[3], prefetch=32):
                arrived[delivery.body.decode()] += 1
                await delivery.ack()
                if len(arrived) >= total:
                    all_arrived.set()

        collector = asyncio.ensure_future(collect())
        for hop in hops:
            for _ in range(CONSUMERS_PER_HOP):
                hop.start()
        cancellations = 0
        deadline = time.monotonic() + 60 + total * 0.1
        try:
            while not all_arrived.is_set():
                if time.monotonic() > deadline:
                    missing = total - len(arrived)
                    pytest.fail(f"{missing} of {total} messages never reached the end")
                await asyncio.sleep(random.uniform(0.005, 0.03))
                hop = random.choice(hops)
                victims = hop.mid_step()
                if victims and cancellations < MAX_CANCELLATIONS:
                    await hop.cancel(random.choice(victims))
                    cancellations += 1
            await asyncio.sleep(self.quiet_period)  # late duplicates would arrive now
        finally:
            for hop in hops:
                await hop.stop()
            collector.cancel()
            await asyncio.gather(collector, return_exceptions=True)
        assert set(arrived) == {f"chaos-{n}" for n in range(total)}, "a message was lost"
        duplicates = sum(arrived.values()) - len(arrived)
        assert cancellations > 0, "the chaos test cancelled no consumer mid-step"
        assert duplicates <= cancellations, (
            f"{duplicates} duplicates reached the end after only {cancellations} cancellations"
        )
