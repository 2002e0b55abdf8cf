"""Baselines for ``hops.py --transport nats``: the same hops without paigeant.

- ``raw-nats-py``: one ``PullSubscription.fetch`` loop per step stream, each message handled in
  a task (at most ``concurrency`` at once): ``js.publish`` of the next hop (awaiting its PubAck,
  with a ``Nats-Msg-Id`` as paigeant's forwards carry), then ``ack_sync`` (the client/server floor
  with the same guarantees: a confirmed publish, then a confirmed ack);
- ``faststream``: FastStream's NATS JetStream pull subscribers (``PullSub``, batches of 32,
  ``concurrency`` workers) republishing each message to the next stream (the peer).

Both move ``workflows`` messages through ``steps`` work-queue streams with a body of
``body_bytes`` (paigeant's own hop size), on the same NATS server.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from _common import baseline_result

__all__ = ["faststream_hops", "raw_nats_hops", "runners"]

BATCH = 32


def runners(
    workflows: int, steps: int, concurrency: int, body_bytes: int
) -> dict[str, Callable[[], Awaitable[dict[str, Any]]]]:
    """Both baselines on ``PAIGEANT_NATS_URL`` (default the local server), each a coroutine to run."""
    url = os.environ.get("PAIGEANT_NATS_URL", "nats://127.0.0.1:4222")
    shape = (workflows, steps, concurrency, body_bytes)
    return {
        "raw-nats-py": lambda: raw_nats_hops(url, *shape),
        "faststream": lambda: faststream_hops(url, *shape),
    }


async def _quiet(exc: Exception) -> None:
    pass


async def raw_nats_hops(
    url: str, workflows: int, steps: int, concurrency: int, body_bytes: int
) -> dict[str, Any]:
    """Hops/s of a plain nats-py fetch / publish (PubAck) / ack_sync loop."""
    import nats
    from nats.errors import TimeoutError as NatsTimeout

    client = await nats.connect(url, error_cb=_quiet)
    js = client.jetstream()
    tag = uuid.uuid4().hex[:8]
    streams = [f"BENCH_RAW_{tag}_{i}" for i in range(steps)]
    subjects = [f"bench-raw.{tag}.{i}" for i in range(steps)]
    for stream, subject in zip(streams, subjects, strict=True):
        await js.add_stream(name=stream, subjects=[subject], retention="workqueue")
        await js.add_consumer(
            stream, durable_name="w", ack_policy="explicit", ack_wait=30, max_ack_pending=-1
        )
    subscriptions = [await js.pull_subscribe_bind("w", stream) for stream in streams]
    slots = asyncio.Semaphore(concurrency)
    running: set[asyncio.Task[None]] = set()
    hops = 0
    finished = asyncio.Event()

    async def handle(index: int, msg: Any) -> None:
        nonlocal hops
        try:
            if index + 1 < steps:
                await js.publish(
                    subjects[index + 1], msg.data, headers={"Nats-Msg-Id": uuid.uuid4().hex}
                )
            await msg.ack_sync()
            hops += 1
            if hops >= workflows * steps:
                finished.set()
        finally:
            slots.release()

    async def fetcher(index: int) -> None:
        while not finished.is_set():
            try:
                batch = await subscriptions[index].fetch(BATCH, timeout=1)
            except NatsTimeout:
                continue
            for msg in batch:
                await slots.acquire()
                task = asyncio.ensure_future(handle(index, msg))
                running.add(task)
                task.add_done_callback(running.discard)

    body = b"x" * body_bytes
    started = time.perf_counter()
    cpu_started = time.process_time()
    fetchers = [asyncio.ensure_future(fetcher(i)) for i in range(steps)]
    for _ in range(workflows):
        await js.publish(subjects[0], body, headers={"Nats-Msg-Id": uuid.uuid4().hex})
    await finished.wait()
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    for task in fetchers:
        task.cancel()
    await asyncio.gather(*fetchers, *running, return_exceptions=True)
    for stream in streams:
        await js.delete_stream(stream)
    await client.close()
    return baseline_result("raw-nats-py", workflows, steps, concurrency, elapsed, cpu)


async def faststream_hops(
    url: str, workflows: int, steps: int, concurrency: int, body_bytes: int
) -> dict[str, Any]:
    """Hops/s of FastStream JetStream pull subscribers republishing each message."""
    import nats
    from faststream.nats import JStream, NatsBroker, PullSub

    broker = NatsBroker(url, logger=None)
    tag = uuid.uuid4().hex[:8]
    subjects = [f"bench-fs.{tag}.{i}" for i in range(steps)]
    streams = [
        JStream(f"BENCH_FS_{tag}_{i}", subjects=[subjects[i]], retention="workqueue")
        for i in range(steps)
    ]
    hops = 0
    finished = asyncio.Event()

    def make_handler(index: int) -> Any:
        async def handle(body: bytes) -> None:
            nonlocal hops
            if index + 1 < steps:
                await broker.publish(body, subjects[index + 1], stream=streams[index + 1].name)
            hops += 1
            if hops >= workflows * steps:
                finished.set()

        return handle

    for index in range(steps):
        broker.subscriber(
            subjects[index],
            stream=streams[index],
            durable=f"d{index}",
            pull_sub=PullSub(batch_size=BATCH, timeout=1),
            max_workers=concurrency,
        )(make_handler(index))
    body = b"x" * body_bytes
    async with broker:
        await broker.start()
        started = time.perf_counter()
        cpu_started = time.process_time()
        for _ in range(workflows):
            await broker.publish(body, subjects[0], stream=streams[0].name)
        await finished.wait()
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
    client = await nats.connect(url, error_cb=_quiet)
    for stream in streams:
        await client.jsm().delete_stream(stream.name)
    await client.close()
    return baseline_result("faststream", workflows, steps, concurrency, elapsed, cpu)
