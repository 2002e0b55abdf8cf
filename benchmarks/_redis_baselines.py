"""Baselines for ``hops.py --transport redis``: the same hops without paigeant.

- ``raw``: a redis-py loop doing XREADGROUP, XADD, XACK per hop (the client/server floor);
- ``faststream``: FastStream's Redis stream subscribers consuming and republishing (the peer).

Both move ``workflows`` messages through ``steps`` streams with ``concurrency`` consumers and a
body of ``body_bytes`` (paigeant's own hop size), on the same Redis.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from _common import baseline_result

__all__ = ["faststream_hops", "raw_redis_hops", "runners"]


def runners(
    workflows: int, steps: int, concurrency: int, body_bytes: int
) -> dict[str, Callable[[], Awaitable[dict[str, Any]]]]:
    """Both baselines on ``PAIGEANT_REDIS_URL`` (default the local Redis), each a coroutine to run."""
    url = os.environ.get("PAIGEANT_REDIS_URL", "redis://127.0.0.1:6379/0")
    shape = (workflows, steps, concurrency, body_bytes)
    return {
        "raw-redis-py": lambda: raw_redis_hops(url, *shape),
        "faststream": lambda: faststream_hops(url, *shape),
    }


async def raw_redis_hops(
    url: str, workflows: int, steps: int, concurrency: int, body_bytes: int
) -> dict[str, Any]:
    """Hops/s of a plain redis-py XREADGROUP / XADD / XACK loop."""
    import redis.asyncio as redis

    client = redis.from_url(url, max_connections=concurrency + 4)
    prefix = f"bench-raw-{uuid.uuid4().hex[:8]}"
    streams = [f"{prefix}:{i}" for i in range(steps)]
    for stream in streams:
        await client.xgroup_create(stream, "g", id="0", mkstream=True)
    body = b"x" * body_bytes
    hops = 0
    finished = asyncio.Event()

    async def consumer(n: int) -> None:
        nonlocal hops
        while not finished.is_set():
            response = await client.xreadgroup(
                "g", f"c{n}", {s: ">" for s in streams}, count=1, block=100
            )
            for stream, entries in response or []:
                index = streams.index(stream.decode())
                for entry_id, fields in entries:
                    if index + 1 < steps:
                        await client.xadd(streams[index + 1], fields)
                    await client.xack(streams[index], "g", entry_id)
                    hops += 1
                    if hops >= workflows * steps:
                        finished.set()

    started = time.perf_counter()
    cpu_started = time.process_time()
    tasks = [asyncio.ensure_future(consumer(n)) for n in range(concurrency)]
    for _ in range(workflows):
        await client.xadd(streams[0], {"b": body})
    await finished.wait()
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    await asyncio.gather(*tasks, return_exceptions=True)
    await client.delete(*streams)
    await client.aclose()
    return baseline_result("raw-redis-py", workflows, steps, concurrency, elapsed, cpu)


async def faststream_hops(
    url: str, workflows: int, steps: int, concurrency: int, body_bytes: int
) -> dict[str, Any]:
    """Hops/s of FastStream stream subscribers (consumer groups) republishing each message."""
    from faststream.redis import RedisBroker, StreamSub

    broker = RedisBroker(url, logger=None)
    prefix = f"bench-fs-{uuid.uuid4().hex[:8]}"
    streams = [f"{prefix}:{i}" for i in range(steps)]
    hops = 0
    finished = asyncio.Event()

    def make_handler(index: int) -> Any:
        async def handle(body: bytes) -> None:
            nonlocal hops
            if index + 1 < steps:
                await broker.publish(body, stream=streams[index + 1])
            hops += 1
            if hops >= workflows * steps:
                finished.set()

        return handle

    for index, stream in enumerate(streams):
        broker.subscriber(
            stream=StreamSub(stream, group="g", consumer=f"c-{index}"), max_workers=concurrency
        )(make_handler(index))
    body = b"x" * body_bytes
    async with broker:
        await broker.start()
        started = time.perf_counter()
        cpu_started = time.process_time()
        for _ in range(workflows):
            await broker.publish(body, stream=streams[0])
        await finished.wait()
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
    import redis.asyncio as redis

    client = redis.from_url(url)
    await client.delete(*streams)
    await client.aclose()
    return baseline_result("faststream", workflows, steps, concurrency, elapsed, cpu)
