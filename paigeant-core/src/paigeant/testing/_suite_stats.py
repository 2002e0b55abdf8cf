"""Conformance tests of ``Transport.stats()``: the figures follow messages through their states."""

from __future__ import annotations

from ..transports.base import QueueStats, Transport
from ._receiver import Receiver
from ._suite_base import SuiteBase

__all__ = ["StatsTests"]

#: Long enough that a delayed message stays delayed for the whole test.
_PARKED = 60.0


class StatsTests(SuiteBase):
    """stats(queue) counts ready, in-flight, delayed and dead messages as they move."""

    async def test_stats_follow_messages_through_their_states(self, transport: Transport) -> None:
        queue = self.queue()
        delayed = 1 if self.supports_delay else 0
        await self.expect_stats(transport, queue, QueueStats(0, 0, 0, 0), after="nothing")
        await self.publish(transport, queue, 3)
        await self.expect_stats(transport, queue, QueueStats(3, 0, 0, 0), after="3 publishes")
        if delayed:
            await transport.publish(queue, b"later", message_id="stats-later", delay=_PARKED)
        await self.expect_stats(
            transport, queue, QueueStats(3, 0, delayed, 0), after="a delayed publish"
        )
        async with Receiver(transport, queue, prefetch=1) as receiver:
            first = await self.get(receiver)
            await self.expect_stats(
                transport, queue, QueueStats(2, 1, delayed, 0), after="taking one"
            )
            await first.ack()
            await self.expect_stats(
                transport, queue, QueueStats(2, 0, delayed, 0), after="acking it"
            )
            second = await self.get(receiver)
            await self.expect_stats(
                transport, queue, QueueStats(1, 1, delayed, 0), after="taking another"
            )
            await second.dead_letter("counted")
            await self.expect_stats(
                transport, queue, QueueStats(1, 0, delayed, 1), after="dead-lettering it"
            )
            third = await self.get(receiver)
            await third.nack(delay=_PARKED if delayed else 0.0)
            expected = QueueStats(0, 0, 2, 1) if delayed else QueueStats(1, 0, 0, 1)
            await self.expect_stats(transport, queue, expected, after="nacking the third")
        await transport.delete_queue(queue)
        await self.expect_stats(transport, queue, QueueStats(0, 0, 0, 1), after="delete_queue")
