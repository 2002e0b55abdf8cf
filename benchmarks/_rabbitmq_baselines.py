"""Baselines for ``hops.py --transport rabbitmq``: the same hops without paigeant.

- ``raw-aio-pika``: one consumer per step queue (quorum queues, prefetch ``concurrency``, at
  most ``concurrency`` messages handled at once in all), each message published to the next
  queue on a confirm channel (awaiting the broker's confirm, ``mandatory``, a message id as
  paigeant's forwards carry), then acknowledged: the client/broker floor with the same
  guarantees;
- ``faststream``: FastStream's RabbitMQ subscribers (prefetch ``concurrency`` each, publisher
  confirms on) republishing each message to the next queue (the peer).

Both move ``workflows`` messages through ``steps`` quorum queues with a body of ``body_bytes``
(paigeant's own hop size), on the same RabbitMQ node.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from _common import baseline_result

__all__ = ["faststream_hops", "raw_aio_pika_hops", "runners"]

_QUORUM = {"x-queue-type": "quorum"}


def runners(
    workflows: int, steps: int, concurrency: int, body_bytes: int
) -> dict[str, Callable[[], Awaitable[dict[str, Any]]]]:
    """Both baselines on ``PAIGEANT_RABBITMQ_URL`` (default the local node), each a coroutine to run."""
    url = os.environ.get("PAIGEANT_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
    shape = (workflows, steps, concurrency, body_bytes)
    return {
        "raw-aio-pika": lambda: raw_aio_pika_hops(url, *shape),
        "faststream": lambda: faststream_hops(url, *shape),
    }


async def raw_aio_pika_hops(
    url: str, workflows: int, steps: int, concurrency: int, body_bytes: int
) -> dict[str, Any]:
    """Hops/s of a plain aio-pika consume / publish (confirmed) / ack loop."""
    import aio_pika

    connection = await aio_pika.connect(url)
    publisher = await connection.channel(publisher_confirms=True, on_return_raises=True)
    consumer = await connection.channel(publisher_confirms=False)
    await consumer.set_qos(prefetch_count=concurrency)
    tag = uuid.uuid4().hex[:8]
    names = [f"bench-raw.{tag}.{i}" for i in range(steps)]
    queues = [await consumer.declare_queue(n, durable=True, arguments=_QUORUM) for n in names]
    slots = asyncio.Semaphore(concurrency)
    hops = 0
    finished = asyncio.Event()

    def make_handler(index: int) -> Any:
        async def handle(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal hops
            async with slots:
                if index + 1 < steps:
                    await publisher.default_exchange.publish(
                        aio_pika.Message(message.body, message_id=uuid.uuid4().hex),
                        routing_key=names[index + 1],
                        mandatory=True,
                    )
                await message.ack()
                hops += 1
                if hops >= workflows * steps:
                    finished.set()

        return handle

    tags = [await queue.consume(make_handler(index)) for index, queue in enumerate(queues)]
    body = b"x" * body_bytes
    started = time.perf_counter()
    cpu_started = time.process_time()
    for _ in range(workflows):
        await publisher.default_exchange.publish(
            aio_pika.Message(body, message_id=uuid.uuid4().hex), routing_key=names[0]
        )
    await finished.wait()
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    for queue, consumer_tag in zip(queues, tags, strict=True):
        await queue.cancel(consumer_tag)
    for name in names:
        await publisher.queue_delete(name)
    await connection.close()
    return baseline_result("raw-aio-pika", workflows, steps, concurrency, elapsed, cpu)


async def faststream_hops(
    url: str, workflows: int, steps: int, concurrency: int, body_bytes: int
) -> dict[str, Any]:
    """Hops/s of FastStream RabbitMQ subscribers republishing each message."""
    import aio_pika
    from faststream.rabbit import Channel, RabbitBroker, RabbitQueue

    broker = RabbitBroker(url, logger=None)
    tag = uuid.uuid4().hex[:8]
    queues = [
        RabbitQueue(f"bench-fs.{tag}.{i}", durable=True, arguments=_QUORUM) for i in range(steps)
    ]
    hops = 0
    finished = asyncio.Event()

    def make_handler(index: int) -> Any:
        async def handle(body: bytes) -> None:
            nonlocal hops
            if index + 1 < steps:
                await broker.publish(body, queue=queues[index + 1])
            hops += 1
            if hops >= workflows * steps:
                finished.set()

        return handle

    for index in range(steps):
        broker.subscriber(queues[index], channel=Channel(prefetch_count=concurrency))(
            make_handler(index)
        )
    body = b"x" * body_bytes
    async with broker:
        await broker.start()
        started = time.perf_counter()
        cpu_started = time.process_time()
        for _ in range(workflows):
            await broker.publish(body, queue=queues[0])
        await finished.wait()
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
    connection = await aio_pika.connect(url)
    channel = await connection.channel()
    for queue in queues:
        await channel.queue_delete(queue.name)
    await connection.close()
    return baseline_result("faststream", workflows, steps, concurrency, elapsed, cpu)
