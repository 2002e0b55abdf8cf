"""Conformance tests of ack(forward=...): published, delayed, and never acked before."""

from __future__ import annotations

import time

import pytest

from ..transports.base import Outgoing, Transport
from ._receiver import Receiver
from ._suite_base import SuiteBase

__all__ = ["ForwardingTests"]


class ForwardingTests(SuiteBase):
    """Forwards are published, honour their delay, and a failed forward acknowledges nothing."""

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
        self.require_delays()
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

    async def test_failed_forward_leaves_the_delivery_unacknowledged(
        self, transport: Transport
    ) -> None:
        source, target = self.queue(), self.queue()
        await self.publish(transport, source)
        async with Receiver(transport, source) as receiver:
            delivery = await self.get(receiver)
            failure: Exception | None = None
            async with self.fail_next_forward(transport, target):
                try:
                    await delivery.ack(forward=[Outgoing(target, b"next", "fwd-1")])
                except Exception as exc:
                    failure = exc
            if failure is None:
                pytest.fail(
                    "ack(forward=...) succeeded while fail_next_forward() was active: if ack "
                    "does not forward through publish(), override fail_next_forward(transport, "
                    "queue) so that the forward fails for real"
                )
            await delivery.nack()  # the failed ack settled nothing, so this settles it
            again = await self.get(
                receiver,
                self.redelivery_timeout,
                what="the message whose forward failed (was it acknowledged before forwarding?)",
            )
            assert again.attempt == 2
            await again.ack(forward=[Outgoing(target, b"next", "fwd-1")])
        async with Receiver(transport, target) as forwarded:
            got = await self.get(forwarded, what="the forward of the retried step")
            assert (got.message_id, got.body) == ("fwd-1", b"next")
            await got.ack()
            extra = await forwarded.get(timeout=1.0)
            assert extra is None, "the failed forward was published anyway"
