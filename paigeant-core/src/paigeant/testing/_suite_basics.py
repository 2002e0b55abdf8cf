"""Conformance tests of publishing, consuming, competing consumers and reconnects."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from ..transports.base import Transport
from ..transports.queues import dead_letter_queue
from ._receiver import Receiver
from ._suite_base import SuiteBase

__all__ = ["BasicsTests"]


class BasicsTests(SuiteBase):
    """Publish and consume, competing consumers, disconnects and queue deletion."""

    # -- connection ------------------------------------------------------------------------

    async def test_connect_and_disconnect_are_idempotent(self) -> None:
        transport = self.new_transport()
        await transport.connect()
        await transport.connect()
        await transport.disconnect()
        await transport.disconnect()
        async with transport as entered:
            assert entered is transport

    # -- publish and consume ---------------------------------------------------------------

    async def test_body_id_and_headers_are_preserved(self, transport: Transport) -> None:
        queue = self.queue()
        body = bytes(range(256)) * 4
        headers = {"traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01", "x-k": "v é"}
        await transport.publish(queue, body, message_id="id-1", headers=headers)
        async with Receiver(transport, queue) as receiver:
            delivery = await receiver.get()
            assert delivery is not None
            assert delivery.body == body
            assert delivery.message_id == "id-1"
            assert delivery.attempt == 1
            for key, value in headers.items():
                assert delivery.headers[key] == value
            await delivery.ack()

    async def test_messages_published_before_consuming_are_kept_in_order(
        self, transport: Transport
    ) -> None:
        queue = self.queue()
        ids = await self.publish(transport, queue, 5)
        async with Receiver(transport, queue, prefetch=1) as receiver:
            received = []
            for _ in ids:
                delivery = await receiver.get()
                assert delivery is not None
                received.append(delivery.message_id)
                await delivery.ack()
        assert received == ids

    async def test_one_mebibyte_body(self, transport: Transport) -> None:
        """A body of ``max_body_bytes``: 1 MiB (paigeant's default size limit) unless lowered."""
        queue = self.queue()
        size = self.max_body_bytes
        body = (b"0123456789abcdef" * (size // 16 + 1))[:size]
        await transport.publish(queue, body, message_id="big")
        async with Receiver(transport, queue) as receiver:
            delivery = await receiver.get(timeout=10)
            assert delivery is not None and delivery.body == body
            await delivery.ack()

    async def test_acked_message_is_not_redelivered(self, transport: Transport) -> None:
        queue = self.queue()
        await self.publish(transport, queue)
        async with Receiver(transport, queue) as receiver:
            delivery = await receiver.get()
            assert delivery is not None
            await delivery.ack()
            assert await receiver.get(timeout=self.visibility_timeout * 2 + 0.5) is None

    async def test_consumer_publishing_from_its_own_loop_does_not_deadlock(
        self, transport: Transport
    ) -> None:
        queue = self.queue()
        await transport.publish(queue, b"0", message_id="chain-0")
        seen = 0

        async def chain() -> None:
            nonlocal seen
            async for delivery in transport.consume(queue, prefetch=1):
                seen = int(delivery.body)
                if seen < 30:
                    await transport.publish(
                        queue, str(seen + 1).encode(), message_id=f"chain-{seen + 1}"
                    )
                await delivery.ack()
                if seen == 30:
                    return

        await asyncio.wait_for(chain(), 30)
        assert seen == 30

    # -- new queues ------------------------------------------------------------------------

    async def _first_publishes_at_once(self, transport: Transport, *, delay: float) -> None:
        """Several processes' first publishes to new queues, all at once, all land once.

        Brokers create a queue on first use; two clients creating one at the same moment is
        where JetStream 2.9 and RabbitMQ quorum queues answer before the queue takes messages.
        """
        transports = [transport, *[await self.fresh_transport() for _ in range(5)]]
        queues = [self.queue() for _ in range(6)]
        for queue in queues:
            sent = await asyncio.gather(
                *(
                    other.publish(queue, b"first", message_id=f"{queue}-{index}", delay=delay)
                    for index, other in enumerate(transports)
                ),
                return_exceptions=True,
            )
            refused = [result for result in sent if isinstance(result, BaseException)]
            assert not refused, f"a first publish to new queue {queue} failed: {refused[0]!r}"
        for queue in queues:
            expected = {f"{queue}-{index}" for index in range(len(transports))}
            got: list[str] = []
            async with Receiver(transport, queue, prefetch=len(expected)) as receiver:
                for _ in expected:
                    delivery = await self.get(receiver, 5.0 + delay, what=f"a message of {queue}")
                    got.append(delivery.message_id)
                    await delivery.ack()
                assert await receiver.get(0.2) is None, f"{queue} held more than was published"
            assert sorted(got) == sorted(expected), f"{queue} lost or repeated messages"

    async def test_first_publishes_of_several_processes_to_a_new_queue_all_land(
        self, transport: Transport
    ) -> None:
        await self._first_publishes_at_once(transport, delay=0.0)

    async def test_first_delayed_publishes_of_several_processes_all_land(
        self, transport: Transport
    ) -> None:
        self.require_delays()
        await self._first_publishes_at_once(transport, delay=0.3)

    # -- competing consumers ---------------------------------------------------------------

    async def test_competing_consumers_share_without_loss_or_duplicates(
        self, transport: Transport
    ) -> None:
        queue = self.queue()
        total = 300
        ids = set(await self.publish(transport, queue, total))
        received: dict[int, list[str]] = {0: [], 1: [], 2: []}
        done = asyncio.Event()

        async def consumer(index: int) -> None:
            async for delivery in transport.consume(queue, prefetch=4):
                received[index].append(delivery.message_id)
                await asyncio.sleep(0.001)
                await delivery.ack()
                if sum(map(len, received.values())) >= total:
                    done.set()

        tasks = [asyncio.ensure_future(consumer(i)) for i in received]
        try:
            await asyncio.wait_for(done.wait(), 60)
            await asyncio.sleep(self.visibility_timeout + 0.5)  # would-be duplicates arrive
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        everything = [mid for got in received.values() for mid in got]
        assert len(everything) == len(set(everything)), "a message was delivered twice"
        assert set(everything) == ids, "a message was lost"
        assert sum(1 for got in received.values() if got) >= 2, "only one consumer received work"

    # -- durability across reconnects ------------------------------------------------------

    async def test_disconnect_does_not_lose_unsettled_deliveries(self) -> None:
        transport = self.new_transport()
        await transport.connect()
        queue = f"conformance-{uuid.uuid4().hex[:12]}"
        try:
            await transport.publish(queue, b"keep", message_id="keep-1")
            receiver = Receiver(transport, queue)
            held = await receiver.get()
            assert held is not None
            await transport.disconnect()
            await receiver.close()
            await transport.connect()
            async with Receiver(transport, queue) as again:
                delivery = await again.get(timeout=self.redelivery_timeout)
                assert delivery is not None and delivery.message_id == "keep-1"
                assert delivery.attempt == 2
                await delivery.ack()
        finally:
            await transport.delete_queue(queue)
            await transport.delete_queue(dead_letter_queue(queue))
            await transport.disconnect()

    async def test_disconnect_ends_a_waiting_consume_loop(self) -> None:
        transport = self.new_transport()
        await transport.connect()
        queue = f"conformance-{uuid.uuid4().hex[:12]}"
        iterator = transport.consume(queue).__aiter__()
        waiting = asyncio.ensure_future(anext(iterator))
        try:
            await asyncio.sleep(0.3)  # blocked on the empty queue
            assert not waiting.done()
            await transport.disconnect()
            done, _ = await asyncio.wait({waiting}, timeout=self.redelivery_grace)
            assert done, "consume() kept waiting after disconnect()"
            with pytest.raises(StopAsyncIteration):
                waiting.result()
        finally:
            waiting.cancel()
            await transport.connect()
            await transport.delete_queue(queue)
            await transport.disconnect()

    async def test_delete_queue_drops_its_messages(self, transport: Transport) -> None:
        queue = self.queue()
        await self.publish(transport, queue, 3)
        await transport.delete_queue(queue)
        await transport.delete_queue(queue)  # deleting a missing queue is fine
        async with Receiver(transport, queue) as receiver:
            assert await receiver.get(timeout=0.5) is None
