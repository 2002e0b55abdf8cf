"""RedisTransport.stats(): exact counts, wake markers left out, held and orphaned entries in flight."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest_asyncio
import redis.asyncio

from paigeant import QueueStats, dead_letter_queue
from paigeant.testing import Receiver
from paigeant_redis import RedisTransport
from paigeant_redis._keys import CONSUMER_GROUP


@pytest_asyncio.fixture
async def transport(redis_url: str, key_prefix: str) -> AsyncIterator[RedisTransport]:
    async with RedisTransport(url=redis_url, key_prefix=key_prefix, visibility_timeout=30) as t:
        yield t  # type: ignore[misc]


@pytest_asyncio.fixture
async def raw(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def test_wake_markers_are_not_counted_even_when_a_dead_consumer_holds_one(
    transport: RedisTransport, raw: redis.asyncio.Redis
) -> None:
    queue = f"q-{uuid.uuid4().hex[:12]}"
    stream = transport.keys.stream(queue)
    assert await transport.stats(queue) == QueueStats(0, 0, 0, 0)  # no keys at all yet
    await transport.publish(queue, b"later", message_id="d-1", delay=60)
    assert await raw.xlen(stream) == 1, "a delayed publish adds a wake marker"
    assert await transport.stats(queue) == QueueStats(0, 0, 1, 0)
    await raw.xgroup_create(stream, CONSUMER_GROUP, id="0", mkstream=True)
    await raw.xreadgroup(CONSUMER_GROUP, "ghost", {stream: ">"})  # reads the marker, dies
    await transport.publish(queue, b"now", message_id="n-1")
    assert await transport.stats(queue) == QueueStats(1, 0, 1, 0)
    async with Receiver(transport, queue) as receiver:
        delivery = await receiver.get()
        assert delivery is not None and delivery.message_id == "n-1"
        assert await transport.stats(queue) == QueueStats(0, 1, 1, 0)
        await delivery.dead_letter("counted")
    assert await transport.stats(queue) == QueueStats(0, 0, 1, 1)
    async with Receiver(transport, dead_letter_queue(queue)) as dead:
        parked = await dead.get()
        assert parked is not None
        assert await transport.stats(queue) == QueueStats(0, 0, 1, 1), "held dead letters count"
        await parked.ack()
    assert await transport.stats(queue) == QueueStats(0, 0, 1, 0)
    await transport.delete_queue(queue)


async def test_a_stream_holds_few_wake_markers(
    transport: RedisTransport, raw: redis.asyncio.Redis
) -> None:
    queue = f"q-{uuid.uuid4().hex[:12]}"
    for n in range(40):  # each is due before the last: each would want to wake a consumer
        await transport.publish(queue, b"x", message_id=f"d-{n}", delay=100 - n)
    assert await raw.xlen(transport.keys.stream(queue)) == 16
    assert await raw.scard(transport.keys.wake(queue)) == 16
    assert await transport.stats(queue) == QueueStats(0, 0, 40, 0)
    await transport.delete_queue(queue)
    assert not await raw.exists(transport.keys.wake(queue))
