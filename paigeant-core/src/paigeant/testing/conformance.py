"""The transport conformance suite: subclass it and define ``make_transport(self)``."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

try:
    import pytest
    import pytest_asyncio
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise ImportError(
        "paigeant.testing needs pytest and pytest-asyncio: pip install 'paigeant-core[testing]'"
    ) from exc

from ..transports.base import DEAD_LETTER_REASON_HEADER, Delivery, Outgoing, Transport
from ..transports.queues import dead_letter_queue

__all__ = ["Receiver", "TransportConformance"]


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


class TransportConformance:
    """Every rule of the Transport contract, as tests. Subclass and define ``make_transport``.

    Class attributes declare what the suite may rely on:

    - ``visibility_timeout``/``max_deliveries``: set on the transport before it connects, so
      leases and poison protection are observable quickly.
    - ``redelivery_grace``: extra seconds a redelivery may take past the lease.
    - ``forward_uses_publish``: ``ack(forward=...)`` publishes through ``self.publish`` (the
      suite then checks that a failing forward leaves the delivery unacknowledged).
    """

    pytestmark = pytest.mark.asyncio
    visibility_timeout: float = 1.0
    max_deliveries: int = 3
    redelivery_grace: float = 5.0
    forward_uses_publish: bool = True

    def make_transport(self) -> Transport:
        """Return a new, unconnected transport under test."""
        raise NotImplementedError(
            "define make_transport(self) in your TransportConformance subclass"
        )

    # -- fixtures and helpers -------------------------------------------------------------

    def new_transport(self) -> Transport:
        """Create a transport with the suite's lease and poison settings applied."""
        transport = self.make_transport()
        transport.visibility_timeout = self.visibility_timeout
        transport.max_deliveries = self.max_deliveries
        return transport

    @pytest_asyncio.fixture
    async def transport(self) -> AsyncIterator[Transport]:
        """A connected transport; its test queues are deleted afterwards."""
        transport = self.new_transport()
        await transport.connect()
        self._queues: list[str] = []
        try:
            yield transport
        finally:
            for queue in self._queues:
                for name in (queue, dead_letter_queue(queue)):
                    with contextlib.suppress(Exception):  # best-effort cleanup
                        await transport.delete_queue(name)
            await transport.disconnect()

    def queue(self) -> str:
        """Return a fresh queue name, deleted (with its dead letters) after the test."""
        name = f"conformance-{uuid.uuid4().hex[:12]}"
        self._queues.append(name)
        return name

    @property
    def redelivery_timeout(self) -> float:
        """Longest wait for a redelivery: the lease plus the grace period."""
        return self.visibility_timeout + self.redelivery_grace

    @staticmethod
    async def publish(transport: Transport, queue: str, n: int = 1, **kwargs: Any) -> list[str]:
        """Publish ``n`` messages ``m-<i>`` and return their ids."""
        ids = []
        for i in range(n):
            message_id = f"m-{i}-{uuid.uuid4().hex[:6]}"
            await transport.publish(queue, f"body-{i}".encode(), message_id=message_id, **kwargs)
            ids.append(message_id)
        return ids

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
        queue = self.queue()
        body = (b"0123456789abcdef" * 65536)[: 1024 * 1024]
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

    async def test_publish_with_delay(self, transport: Transport) -> None:
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

    # -- settlement ------------------------------------------------------------------------

    async def test_nack_redelivers_with_next_attempt(self, transport: Transport) -> None:
        queue = self.queue()
        (message_id,) = await self.publish(transport, queue)
        async with Receiver(transport, queue) as receiver:
            first = await receiver.get()
            assert first is not None and first.attempt == 1
            await first.nack()
            second = await receiver.get(timeout=self.redelivery_timeout)
            assert second is not None
            assert (second.message_id, second.attempt, second.body) == (message_id, 2, first.body)
            await second.ack()

    async def test_nack_with_delay_waits(self, transport: Transport) -> None:
        queue = self.queue()
        await self.publish(transport, queue)
        async with Receiver(transport, queue) as receiver:
            first = await receiver.get()
            assert first is not None
            nacked_at = time.monotonic()
            await first.nack(delay=1.0)
            second = await receiver.get(timeout=1.0 + self.redelivery_grace)
            assert second is not None and second.attempt == 2
            assert time.monotonic() - nacked_at >= 0.9
            await second.ack()

    async def test_consumer_that_stops_without_settling_gets_it_redelivered(
        self, transport: Transport
    ) -> None:
        queue = self.queue()
        (message_id,) = await self.publish(transport, queue, headers={"x-k": "v"})
        crashed = Receiver(transport, queue)
        first = await crashed.get()
        assert first is not None and first.attempt == 1
        await crashed.close()  # the consumer dies holding the delivery
        async with Receiver(transport, queue) as receiver:
            second = await receiver.get(timeout=self.redelivery_timeout)
            assert second is not None
            assert second.message_id == message_id
            assert second.attempt == 2
            assert second.headers["x-k"] == "v"
            await second.ack()

    async def test_lease_expiry_redelivers_to_another_consumer(self, transport: Transport) -> None:
        queue = self.queue()
        await self.publish(transport, queue)
        async with Receiver(transport, queue) as slow, Receiver(transport, queue) as other:
            held = await slow.get()
            assert held is not None
            again = await other.get(timeout=self.redelivery_timeout)
            assert again is not None and again.attempt == 2
            await again.ack()

    async def test_extend_keeps_the_lease(self, transport: Transport) -> None:
        queue = self.queue()
        await self.publish(transport, queue)
        async with Receiver(transport, queue) as worker:
            held = await worker.get()
            assert held is not None
            other = Receiver(transport, queue)
            probe = asyncio.ensure_future(other.get(timeout=self.visibility_timeout * 3))
            deadline = time.monotonic() + self.visibility_timeout * 2.5
            while time.monotonic() < deadline:
                await held.extend()
                await asyncio.sleep(self.visibility_timeout / 4)
            await held.ack()
            stolen = await probe
            await other.close()
            assert stolen is None, "an extended lease was redelivered to another consumer"

    async def test_dead_letter_parks_message_with_reason(self, transport: Transport) -> None:
        queue = self.queue()
        (message_id,) = await self.publish(transport, queue, headers={"x-k": "v"})
        async with Receiver(transport, queue) as receiver:
            delivery = await receiver.get()
            assert delivery is not None
            await delivery.dead_letter("cannot parse body")
            assert await receiver.get(timeout=self.visibility_timeout * 2 + 0.5) is None
        async with Receiver(transport, dead_letter_queue(queue)) as dead:
            parked = await dead.get()
            assert parked is not None
            assert parked.message_id == message_id
            assert parked.body == b"body-0"
            assert parked.headers[DEAD_LETTER_REASON_HEADER] == "cannot parse body"
            assert parked.headers["x-k"] == "v"
            await parked.ack()

    async def test_max_deliveries_dead_letters_after_nacks(self, transport: Transport) -> None:
        queue = self.queue()
        (message_id,) = await self.publish(transport, queue)
        attempts: list[int] = []
        async with Receiver(transport, queue) as receiver:
            for _ in range(self.max_deliveries + 1):
                delivery = await receiver.get(timeout=self._next_wait(attempts))
                if delivery is None:
                    break
                attempts.append(delivery.attempt)
                await delivery.nack()
        assert attempts == list(range(1, self.max_deliveries + 1))
        await self._assert_dead_lettered(transport, queue, message_id)

    async def test_max_deliveries_dead_letters_a_message_that_crashes_its_consumer(
        self, transport: Transport
    ) -> None:
        queue = self.queue()
        (message_id,) = await self.publish(transport, queue)
        attempts: list[int] = []
        for _ in range(self.max_deliveries + 1):
            receiver = Receiver(transport, queue)
            delivery = await receiver.get(timeout=self._next_wait(attempts))
            if delivery is None:
                break
            attempts.append(delivery.attempt)
            await receiver.close()  # dies without settling, every time
        assert attempts == list(range(1, self.max_deliveries + 1))
        await self._assert_dead_lettered(transport, queue, message_id)

    def _next_wait(self, attempts: list[int]) -> float:
        """Wait long for an expected redelivery, briefly for one that must not come."""
        if len(attempts) < self.max_deliveries:
            return self.redelivery_timeout
        return self.visibility_timeout + 0.5

    async def _assert_dead_lettered(
        self, transport: Transport, queue: str, message_id: str
    ) -> None:
        async with Receiver(transport, dead_letter_queue(queue)) as dead:
            parked = await dead.get(timeout=self.redelivery_timeout)
            assert parked is not None, "message past max_deliveries was not dead-lettered"
            assert parked.message_id == message_id
            assert parked.body == b"body-0"
            assert parked.headers.get(DEAD_LETTER_REASON_HEADER)
            await parked.ack()

    # -- forwarding ------------------------------------------------------------------------

    async def test_ack_with_forward_publishes_and_acks(self, transport: Transport) -> None:
        source, target = self.queue(), self.queue()
        await self.publish(transport, source)
        async with Receiver(transport, source) as receiver:
            delivery = await receiver.get()
            assert delivery is not None
            await delivery.ack(
                forward=[
                    Outgoing(target, b"next-1", "fwd-1", {"traceparent": "t1"}),
                    Outgoing(target, b"next-2", "fwd-2", {"traceparent": "t2"}),
                ]
            )
            assert await receiver.get(timeout=self.visibility_timeout * 2 + 0.5) is None
        async with Receiver(transport, target) as forwarded:
            got = []
            for _ in range(2):
                delivery = await forwarded.get()
                assert delivery is not None
                got.append((delivery.message_id, delivery.body, delivery.headers["traceparent"]))
                await delivery.ack()
        assert sorted(got) == [("fwd-1", b"next-1", "t1"), ("fwd-2", b"next-2", "t2")]

    async def test_forward_with_delay(self, transport: Transport) -> None:
        source, target = self.queue(), self.queue()
        await self.publish(transport, source)
        async with Receiver(transport, source) as receiver:
            delivery = await receiver.get()
            assert delivery is not None
            acked_at = time.monotonic()
            await delivery.ack(forward=[Outgoing(target, b"later", "fwd-late", delay=1.0)])
        async with Receiver(transport, target) as forwarded:
            later = await forwarded.get(timeout=1.0 + self.redelivery_grace)
            assert later is not None and later.body == b"later"
            assert time.monotonic() - acked_at >= 0.9
            await later.ack()

    async def test_failed_forward_leaves_delivery_unacked(
        self, transport: Transport, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        if not self.forward_uses_publish:
            pytest.skip("forward is atomic in this transport; covered by its own tests")
        source, target = self.queue(), self.queue()
        await self.publish(transport, source)

        async def failing_publish(*args: Any, **kwargs: Any) -> None:
            raise ConnectionError("broker went away")

        async with Receiver(transport, source) as receiver:
            delivery = await receiver.get()
            assert delivery is not None
            monkeypatch.setattr(transport, "publish", failing_publish)
            with pytest.raises(ConnectionError):
                await delivery.ack(forward=[Outgoing(target, b"next", "fwd")])
            monkeypatch.undo()
            await delivery.nack()
            again = await receiver.get(timeout=self.redelivery_timeout)
            assert again is not None and again.attempt == 2, "ack happened before forward"
            await again.ack()

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
