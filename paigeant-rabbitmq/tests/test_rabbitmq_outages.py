"""Outages of a private RabbitMQ node: publish stays bounded, connect() never gives up for good.

The node is one the tests start themselves (``private_rabbitmq``); the shared node on 5672 is
never stopped.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest

from paigeant import TransportConnectionError
from paigeant.testing import Receiver
from paigeant_rabbitmq import RabbitMQTransport


async def test_publish_and_connect_during_an_outage_are_bounded_and_harmless(
    private_rabbitmq: Any,
) -> None:
    queue = f"outage.{uuid.uuid4().hex[:10]}"
    transport = RabbitMQTransport(url=private_rabbitmq.url, publish_timeout=2.0)
    async with transport:
        await transport.publish(queue, b"before", message_id="before")
        receiver = Receiver(transport, queue)
        first = await receiver.get(5)
        assert first is not None and first.message_id == "before"
        await first.ack()
        waiting = asyncio.ensure_future(receiver.get(60))  # a loop reconnecting for ever
        await asyncio.to_thread(private_rabbitmq.stop)
        try:
            started = time.monotonic()
            with pytest.raises(TransportConnectionError):
                await transport.publish(queue, b"lost", message_id="refused")
            assert time.monotonic() - started < 4.0, "publish ignored publish_timeout"
            with pytest.raises(TransportConnectionError):
                await transport.connect()  # on a link already open: waits, then gives up
        finally:
            await asyncio.to_thread(private_rabbitmq.start)
        deadline = time.monotonic() + 20
        while True:  # publish works again once the node is back, the same transport
            try:
                await transport.publish(queue, b"after", message_id="after")
                break
            except TransportConnectionError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        resumed = await waiting
        assert resumed is not None and resumed.message_id == "after"
        await resumed.ack()
        await receiver.close()
        await transport.delete_queue(queue)
