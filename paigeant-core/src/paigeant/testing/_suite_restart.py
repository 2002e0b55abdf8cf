"""Conformance tests run when the subclass defines ``restart_broker``: nothing lost, loops resume."""

from __future__ import annotations

import asyncio
import time

import pytest

from ..errors import TransportConnectionError
from ..transports.base import Delivery, Transport
from ._receiver import Receiver
from ._suite_base import SuiteBase

__all__ = ["RestartTests"]


class RestartTests(SuiteBase):
    """Published, in-flight and delayed messages survive a broker restart; publish never hangs."""

    async def publish_until_accepted(
        self, transport: Transport, queue: str, message_id: str
    ) -> None:
        """Publish once the broker is back: TransportConnectionError is allowed meanwhile."""
        deadline = time.monotonic() + self.publish_failure_bound
        while True:
            try:
                async with asyncio.timeout(self.publish_failure_bound):
                    await transport.publish(queue, message_id.encode(), message_id=message_id)
                return
            except TransportConnectionError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)

    async def collect(
        self, receiver: Receiver, wanted: set[str], timeout: float
    ) -> dict[str, Delivery]:
        """Take deliveries until every id in ``wanted`` arrived (acking each); by message id."""
        got: dict[str, Delivery] = {}
        deadline = time.monotonic() + timeout
        while not wanted <= set(got):
            left = deadline - time.monotonic()
            delivery = await receiver.get(timeout=max(left, 0.01))
            if delivery is None:
                missing = sorted(wanted - set(got))
                pytest.fail(f"after the broker restart these never arrived: {missing}")
            got[delivery.message_id] = delivery
            await delivery.ack()
        return got

    async def test_messages_survive_a_broker_restart(self, transport: Transport) -> None:
        self.require_restart()
        queue, idle_queue = self.queue(), self.queue()
        await transport.publish(queue, b"held", message_id="restart-in-flight")
        holder = Receiver(transport, queue, prefetch=1)
        held = await self.get(holder)  # leased, never settled
        assert held.message_id == "restart-in-flight"
        await transport.publish(queue, b"1", message_id="restart-ready-1")
        await transport.publish(queue, b"2", message_id="restart-ready-2")
        delay = 1.0 if self.supports_delay else 0.0
        await transport.publish(queue, b"3", message_id="restart-delayed", delay=delay)
        idle = Receiver(transport, idle_queue)
        waiting = asyncio.ensure_future(idle.get(timeout=self.publish_failure_bound + 30))
        await asyncio.sleep(0.3)  # that consume loop now waits on an empty queue
        try:
            await self.restart_broker()
            await self.publish_until_accepted(transport, idle_queue, "restart-after")
            woken = await waiting
            assert woken is not None, "a consume loop waiting through the restart did not resume"
            assert woken.message_id == "restart-after"
            await woken.ack()
            wanted = {"restart-in-flight", "restart-ready-1", "restart-ready-2", "restart-delayed"}
            async with Receiver(transport, queue) as receiver:
                got = await self.collect(
                    receiver, wanted, self.redelivery_timeout + delay + self.publish_failure_bound
                )
            assert got["restart-in-flight"].attempt >= 2
            assert got["restart-ready-1"].attempt == 1
            assert got["restart-delayed"].attempt == 1
        finally:
            waiting.cancel()
            await idle.close()
            await holder.close()

    async def test_publish_during_a_broker_restart_succeeds_or_raises(
        self, transport: Transport
    ) -> None:
        self.require_restart()
        queue = self.queue()
        outcomes: dict[str, str] = {}
        restarting = True

        async def keep_publishing() -> None:
            n = 0
            while restarting:
                message_id = f"outage-{n}"
                n += 1
                try:
                    async with asyncio.timeout(self.publish_failure_bound):
                        await transport.publish(queue, b"x", message_id=message_id)
                    outcomes[message_id] = "published"
                except TransportConnectionError:
                    outcomes[message_id] = "refused"
                except TimeoutError:
                    pytest.fail(
                        f"publish hung for {self.publish_failure_bound}s during a broker restart "
                        "instead of raising TransportConnectionError"
                    )
                await asyncio.sleep(0.02)

        publisher = asyncio.ensure_future(keep_publishing())
        await asyncio.sleep(0.1)
        try:
            await self.restart_broker()
        finally:
            restarting = False
            await publisher
        await self.publish_until_accepted(transport, queue, "outage-after")
        published = {mid for mid, outcome in outcomes.items() if outcome == "published"}
        async with Receiver(transport, queue) as receiver:
            got = await self.collect(
                receiver, published | {"outage-after"}, self.publish_failure_bound
            )
        # A publish that raised may still have been stored; nothing else may appear.
        assert set(got) <= {*outcomes, "outage-after"}
