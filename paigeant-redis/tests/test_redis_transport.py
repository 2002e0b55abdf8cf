"""Behaviour specific to RedisTransport: reclaim, atomic Lua settles, delays, recovery."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import re
import sys
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio
import redis
import redis.asyncio

from paigeant import LeaseLostError, TransportConnectionError, dead_letter_queue, get_transport
from paigeant.plugins import registrations, reset_plugins
from paigeant.testing import Receiver
from paigeant.transports.base import DEAD_LETTER_QUEUE_HEADER, DEAD_LETTER_REASON_HEADER, Outgoing
from paigeant_redis import RedisDelivery, RedisTransport
from paigeant_redis import _consumer as consumer_module
from paigeant_redis._keys import CONSUMER_GROUP

MakeTransport = Callable[..., Awaitable[RedisTransport]]


@pytest_asyncio.fixture
async def raw(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    """A plain client on the test server, to look at and tamper with the keys."""
    client = redis.asyncio.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest_asyncio.fixture
async def make_transport(redis_url: str, key_prefix: str) -> AsyncIterator[MakeTransport]:
    """Create connected transports on the test prefix; all disconnected afterwards."""
    created: list[RedisTransport] = []

    async def make(**options: Any) -> RedisTransport:
        options.setdefault("url", redis_url)
        options.setdefault("key_prefix", key_prefix)
        options.setdefault("visibility_timeout", 1.0)
        transport = RedisTransport(**options)
        await transport.connect()
        created.append(transport)
        return transport

    yield make
    for transport in created:
        await transport.disconnect()


@pytest.fixture
def queue() -> str:
    """A fresh queue name (the run's key prefix keeps it apart from everything else)."""
    return f"q-{uuid.uuid4().hex[:12]}"


async def get(receiver: Receiver, timeout: float = 5.0) -> RedisDelivery:
    delivery = await receiver.get(timeout)
    assert isinstance(delivery, RedisDelivery), f"no delivery within {timeout}s"
    return delivery


async def ghost_takes(raw: redis.asyncio.Redis, stream: str, count: int = 1) -> str:
    """A consumer that reads entries and vanishes without a trace (a killed process)."""
    ghost = f"ghost-{uuid.uuid4().hex[:8]}"
    with contextlib.suppress(redis.ResponseError):
        await raw.xgroup_create(stream, CONSUMER_GROUP, id="0", mkstream=True)
    taken = await raw.xreadgroup(CONSUMER_GROUP, ghost, {stream: ">"}, count=count)
    assert taken and len(taken[0][1]) == count
    return ghost


# -- reclaim and poison messages -------------------------------------------------------------


async def test_entry_of_vanished_consumer_is_reclaimed(
    make_transport: MakeTransport, raw: redis.asyncio.Redis, queue: str
) -> None:
    transport = await make_transport(visibility_timeout=0.5)
    await transport.publish(queue, b"work", message_id="m-1", headers={"k": "v"})
    await ghost_takes(raw, transport.keys.stream(queue))
    started = time.monotonic()
    async with Receiver(transport, queue) as receiver:
        delivery = await get(receiver)
        assert time.monotonic() - started >= 0.3, "reclaimed before the lease ran out"
        assert (delivery.message_id, delivery.body, delivery.attempt) == ("m-1", b"work", 2)
        assert delivery.headers["k"] == "v"
        await delivery.ack()
    stream = transport.keys.stream(queue)
    assert await raw.xlen(stream) == 0, "acked entries are deleted (XDEL)"
    assert (await raw.xpending(stream, CONSUMER_GROUP))["pending"] == 0


_KILLED_CONSUMER = """
import asyncio, sys
from paigeant_redis import RedisTransport

async def main() -> None:
    transport = RedisTransport(url=sys.argv[1], key_prefix=sys.argv[2])
    await transport.connect()
    async for delivery in transport.consume(sys.argv[3]):
        print(delivery.message_id, delivery.attempt, flush=True)
        await asyncio.sleep(3600)  # killed here, holding the delivery

asyncio.run(main())
"""


async def test_message_held_by_a_killed_process_is_redelivered(
    make_transport: MakeTransport, redis_url: str, key_prefix: str, queue: str
) -> None:
    transport = await make_transport(visibility_timeout=0.5)
    await transport.publish(queue, b"work", message_id="k-1")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _KILLED_CONSUMER,
        redis_url,
        key_prefix,
        queue,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 20)
        assert line.split() == [b"k-1", b"1"]
    finally:
        process.kill()  # SIGKILL: no cleanup, no release
        await process.wait()
    async with Receiver(transport, queue) as receiver:
        delivery = await get(receiver, timeout=3.0)
        assert (delivery.message_id, delivery.attempt) == ("k-1", 2)
        await delivery.ack()


async def test_reclaims_past_max_deliveries_dead_letter_atomically(
    make_transport: MakeTransport, raw: redis.asyncio.Redis, queue: str
) -> None:
    transport = await make_transport(visibility_timeout=0.3, max_deliveries=2)
    stream = transport.keys.stream(queue)
    await transport.publish(queue, b"poison", message_id="p-1", headers={"k": "v"})
    await ghost_takes(raw, stream)  # delivery 1: the consumer dies
    await asyncio.sleep(0.35)
    # delivery 2, to another consumer that dies too (XAUTOCLAIM counts the delivery)
    await raw.xautoclaim(stream, CONSUMER_GROUP, "ghost-2", 300, "0-0")
    async with Receiver(transport, queue) as receiver:
        assert await receiver.get(timeout=1.5) is None, "a third delivery was handed out"
    assert await raw.xlen(stream) == 0
    assert (await raw.xpending(stream, CONSUMER_GROUP))["pending"] == 0
    async with Receiver(transport, dead_letter_queue(queue)) as dead:
        parked = await get(dead)
        assert (parked.message_id, parked.body, parked.attempt) == ("p-1", b"poison", 1)
        assert parked.headers["k"] == "v"
        assert "max_deliveries=2" in parked.headers[DEAD_LETTER_REASON_HEADER]
        assert parked.headers[DEAD_LETTER_QUEUE_HEADER] == queue
        await parked.ack()


async def test_attempts_count_nacks_delays_and_crashes_alike(
    make_transport: MakeTransport, queue: str
) -> None:
    transport = await make_transport()
    await transport.publish(queue, b"x", message_id="a-1")
    async with Receiver(transport, queue) as receiver:
        first = await get(receiver)
        await first.nack(delay=0.2)
        second = await get(receiver)
        assert second.attempt == 2
    # the receiver closed holding `second`: released, and counted as a delivery
    async with Receiver(transport, queue) as receiver:
        third = await get(receiver, timeout=2.0)
        assert third.attempt == 3
        await third.nack()
        fourth = await get(receiver)
        assert (fourth.attempt, fourth.body, fourth.message_id) == (4, b"x", "a-1")
        await fourth.ack()


async def test_closing_a_loop_keeps_attempts_of_entries_it_never_handed_out(
    make_transport: MakeTransport, queue: str
) -> None:
    transport = await make_transport(visibility_timeout=30.0)
    for i in range(3):
        await transport.publish(queue, f"{i}".encode(), message_id=f"b-{i}")
    async with Receiver(transport, queue, prefetch=4) as receiver:
        held = await get(receiver)  # the loop read all three; it handed out one
        assert held.message_id == "b-0"
    started = time.monotonic()
    async with Receiver(transport, queue) as receiver:
        again = {}
        for _ in range(2):
            delivery = await get(receiver, timeout=2.0)
            again[delivery.message_id] = delivery.attempt
            await delivery.ack()
        assert again == {"b-1": 1, "b-2": 1}, "entries never handed out lost an attempt"
        assert time.monotonic() - started < 5, "released entries waited for the lease"
        assert await receiver.get(timeout=0.5) is None, "the handed-out entry lost its lease"
        await held.ack()  # its holder still settles it
        assert await receiver.get(timeout=0.5) is None


async def test_orphaned_entry_of_a_live_loop_is_resumed_with_its_count(
    make_transport: MakeTransport, raw: redis.asyncio.Redis, queue: str
) -> None:
    """A reply lost with its connection leaves an entry in the loop's own pending list."""
    transport = await make_transport(visibility_timeout=2.0)
    stream = transport.keys.stream(queue)
    await transport.publish(queue, b"first", message_id="o-1")
    async with Receiver(transport, queue) as receiver:
        first = await get(receiver)
        await transport.publish(queue, b"lost", message_id="o-2")
        # the server hands o-2 to this loop's consumer, but the loop never sees the reply
        await raw.xreadgroup(CONSUMER_GROUP, first.consumer, {stream: ">"}, count=1)
        await first.ack()
        orphan = await get(receiver, timeout=3.0)
        assert (orphan.message_id, orphan.attempt) == ("o-2", 1)
        await orphan.ack()


async def test_settling_after_losing_the_lease_to_another_consumer(
    make_transport: MakeTransport, raw: redis.asyncio.Redis, queue: str
) -> None:
    transport = await make_transport(visibility_timeout=0.3)
    stream = transport.keys.stream(queue)
    await transport.publish(queue, b"x", message_id="e-1")
    await transport.publish(queue, b"y", message_id="e-2")
    target = f"{queue}-next"
    async with Receiver(transport, queue) as slow:
        nacked, acked = await get(slow), await get(slow)
        await asyncio.sleep(0.35)
        await raw.xautoclaim(stream, CONSUMER_GROUP, "other", 300, "0-0")
        for delivery in (nacked, acked):
            with pytest.raises(LeaseLostError, match="was lost"):
                await delivery.extend()
        owners = {
            p["consumer"] for p in await raw.xpending_range(stream, CONSUMER_GROUP, "-", "+", 10)
        }
        assert owners == {b"other"}, "extend stole the entries back"
        await nacked.nack()  # not held any more: nothing happens
        assert await raw.xlen(stream) == 2
        await acked.ack(forward=[Outgoing(target, b"n", "e-2.next")])  # still acks, forwards
        assert await raw.xlen(stream) == 1
        assert await raw.xlen(transport.keys.stream(target)) == 1


async def test_a_stale_delivery_cannot_settle_over_its_own_loops_redelivery(
    make_transport: MakeTransport, raw: redis.asyncio.Redis, queue: str
) -> None:
    """The same loop may reclaim its own expired entry: the older delivery has lost it too."""
    transport = await make_transport(visibility_timeout=0.3)
    stream = transport.keys.stream(queue)
    await transport.publish(queue, b"x", message_id="s-1")
    async with Receiver(transport, queue, prefetch=2) as receiver:
        stale = await get(receiver)
        fresh = await get(receiver, timeout=3.0)
        assert (fresh.message_id, fresh.attempt, fresh.consumer) == ("s-1", 2, stale.consumer)
        with pytest.raises(LeaseLostError):
            await stale.extend()
        await stale.nack()  # must not requeue under the newer delivery
        await stale.dead_letter("stale")  # a second settle: nothing at all
        assert await raw.xlen(stream) == 1
        assert (await raw.xpending(stream, CONSUMER_GROUP))["pending"] == 1
        await fresh.extend()
        await fresh.ack()
    assert await raw.xlen(stream) == 0
    assert await raw.xlen(transport.keys.stream(dead_letter_queue(queue))) == 0


async def test_extend_after_disconnect_raises_lease_lost(
    make_transport: MakeTransport, queue: str
) -> None:
    transport = await make_transport(visibility_timeout=30.0)
    await transport.publish(queue, b"x", message_id="x-1")
    receiver = Receiver(transport, queue)
    delivery = await get(receiver)
    await delivery.extend()  # still held: renewed
    await transport.disconnect()
    await receiver.close()
    with pytest.raises(
        LeaseLostError,
        match=r"x-1 on q-\w+ was lost: the transport disconnected and the message was "
        r"released for redelivery",
    ):
        await delivery.extend()
    other = await make_transport(visibility_timeout=30.0)
    async with Receiver(other, queue) as again:  # released: back at once, not after 30 s
        back = await get(again)
        assert (back.message_id, back.attempt) == ("x-1", 2)
        await back.ack()


async def test_a_closed_consume_loop_keeps_the_leases_it_handed_out(
    make_transport: MakeTransport, raw: redis.asyncio.Redis, queue: str
) -> None:
    """A worker draining after it stopped consuming: its steps keep their leases, no duplicate."""
    transport = await make_transport(visibility_timeout=0.6)
    await transport.publish(queue, b"x", message_id="y-1")
    await transport.publish(queue, b"y", message_id="y-2")
    receiver = Receiver(transport, queue, prefetch=1)
    draining = await get(receiver)
    await receiver.close()  # stopped consuming while the step still runs
    async with Receiver(transport, queue) as other:
        second = await get(other)  # what the closed loop never handed out comes at once
        assert (second.message_id, second.attempt) == ("y-2", 1)
        await second.ack()
        for _ in range(4):  # twice the visibility timeout, heartbeats keeping the lease
            await draining.extend()
            assert await other.get(timeout=0.3) is None, "a draining step was redelivered"
        await draining.ack()
        assert await other.get(timeout=1.0) is None
    stream = transport.keys.stream(queue)
    assert await raw.xlen(stream) == 0
    assert (await raw.xpending(stream, CONSUMER_GROUP))["pending"] == 0


async def test_an_unsettled_delivery_of_a_closed_loop_comes_back(
    make_transport: MakeTransport, queue: str
) -> None:
    """Without heartbeats its lease runs out; a disconnect gives it back at once."""
    transport = await make_transport(visibility_timeout=0.5)
    await transport.publish(queue, b"x", message_id="z-1")
    receiver = Receiver(transport, queue)
    forgotten = await get(receiver)
    await receiver.close()
    async with Receiver(transport, queue) as other:
        back = await get(other, timeout=3.0)
        assert (back.message_id, back.attempt) == ("z-1", 2)
        with pytest.raises(LeaseLostError):
            await forgotten.extend()
        await back.ack()
    slow = await make_transport(visibility_timeout=30.0)
    await slow.publish(queue, b"w", message_id="z-2")
    receiver = Receiver(slow, queue)
    held = await get(receiver)
    await receiver.close()
    await slow.disconnect()
    with pytest.raises(LeaseLostError, match="the transport disconnected and the message was"):
        await held.extend()
    other_transport = await make_transport(visibility_timeout=30.0)
    async with Receiver(other_transport, queue) as again:  # released: not after 30 s
        back = await get(again, timeout=3.0)
        assert (back.message_id, back.attempt) == ("z-2", 2)
        await back.ack()


@pytest.mark.parametrize("first", ["close", "disconnect"])
async def test_a_loop_closed_while_the_transport_disconnects_is_released(
    make_transport: MakeTransport, queue: str, first: str
) -> None:
    """Closing a consume() loop and disconnect() racing: the entry is given back at once."""
    transport = await make_transport(visibility_timeout=30.0)
    await transport.publish(queue, b"x", message_id="r-1")
    deliveries = transport.consume(queue)
    held = await anext(deliveries)
    closing = deliveries.aclose()  # type: ignore[attr-defined]
    steps = [closing, transport.disconnect()]
    await asyncio.gather(*(steps if first == "close" else reversed(steps)))
    with pytest.raises(LeaseLostError, match="the transport disconnected"):
        await held.extend()
    assert not transport._retired, "a released loop stayed retired"
    other = await make_transport(visibility_timeout=30.0)
    async with Receiver(other, queue) as again:  # not after the 30 s lease
        back = await get(again, timeout=3.0)
        assert (back.message_id, back.attempt) == ("r-1", 2)
        await back.ack()


async def test_a_lost_lease_frees_its_closed_loop(
    make_transport: MakeTransport, queue: str
) -> None:
    """A retired loop is forgotten once its last delivery lost its lease (nothing kept)."""
    transport = await make_transport(visibility_timeout=0.4)
    await transport.publish(queue, b"x", message_id="f-1")
    receiver = Receiver(transport, queue)
    held = await get(receiver)
    await receiver.close()
    assert len(transport._retired) == 1
    async with Receiver(transport, queue) as other:
        back = await get(other, timeout=3.0)  # the lease ran out: taken over
        with pytest.raises(LeaseLostError):
            await held.extend()
        assert not transport._retired, "a loop holding only a lost delivery stayed retired"
        await back.ack()


async def test_a_read_cancelled_before_it_started_leaves_no_unawaited_coroutine(
    make_transport: MakeTransport, queue: str
) -> None:
    """stop() right after a read began: redis-py's inner XREADGROUP coroutine must not leak."""
    transport = await make_transport()
    client = transport.current_client()
    assert client is not None
    loop = consumer_module.ConsumeLoop(transport, client, queue, 1)
    try:
        await transport.ensure_group(loop.connection, loop.stream)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            reading = asyncio.ensure_future(loop._read(1, 5_000))
            await asyncio.sleep(0)  # _read made its read task, which has not run yet
            assert loop._read_task is not None and not loop._read_task.done()
            await loop.stop()
            assert await reading == []
            del reading
            gc.collect()
        unawaited = [w for w in caught if issubclass(w.category, RuntimeWarning)]
        assert not unawaited, [str(w.message) for w in unawaited]
    finally:
        await loop.close()


# -- atomic forward and dedup ----------------------------------------------------------------


async def test_forward_and_ack_happen_together(
    make_transport: MakeTransport, raw: redis.asyncio.Redis, queue: str
) -> None:
    transport = await make_transport()
    target = f"{queue}-next"
    await transport.publish(queue, b"step-1", message_id="s-1")
    async with Receiver(transport, queue) as receiver:
        delivery = await get(receiver)
        await delivery.ack(forward=[Outgoing(target, b"step-2", "s-2", {"traceparent": "t"})])
    source = transport.keys.stream(queue)
    assert await raw.xlen(source) == 0
    assert (await raw.xpending(source, CONSUMER_GROUP))["pending"] == 0
    entries = await raw.xrange(transport.keys.stream(target))
    assert [fields[b"message_id"] for _, fields in entries] == [b"s-2"]


async def test_failing_forward_acks_nothing_and_adds_nothing(
    make_transport: MakeTransport, raw: redis.asyncio.Redis, queue: str
) -> None:
    transport = await make_transport()
    good, broken = f"{queue}-good", f"{queue}-broken"
    await raw.set(transport.keys.stream(broken), "not a stream")
    await transport.publish(queue, b"x", message_id="f-1")
    async with Receiver(transport, queue) as receiver:
        delivery = await get(receiver)
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            await delivery.ack(
                forward=[Outgoing(good, b"a", "f-2a"), Outgoing(broken, b"b", "f-2b")]
            )
        assert not delivery.settled
        assert await raw.xlen(transport.keys.stream(good)) == 0, "half a forward was added"
        assert (await raw.xpending(transport.keys.stream(queue), CONSUMER_GROUP))["pending"] == 1
        await delivery.nack()
        again = await get(receiver)
        assert again.attempt == 2, "the failed forward acked the delivery"
        await again.ack()


async def test_duplicate_forward_is_skipped(
    make_transport: MakeTransport, raw: redis.asyncio.Redis, queue: str, caplog: Any
) -> None:
    transport = await make_transport()
    target = f"{queue}-next"
    await transport.publish(queue, b"run-1", message_id="d-1")
    await transport.publish(queue, b"run-2", message_id="d-1-redelivered")
    caplog.set_level(logging.INFO, logger="paigeant_redis")
    async with Receiver(transport, queue) as receiver:
        for _ in range(2):  # e.g. a step that ran twice after its lease expired
            delivery = await get(receiver)
            await delivery.ack(forward=[Outgoing(target, b"next", "next-step-id")])
    assert await raw.xlen(transport.keys.stream(target)) == 1
    assert await raw.xlen(transport.keys.stream(queue)) == 0
    assert "already sent earlier" in caplog.text


async def _script_calls(raw: redis.asyncio.Redis) -> int:
    """EVALSHA calls the server has run so far (from INFO commandstats)."""
    stats = await raw.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


async def test_concurrent_acks_go_to_redis_together(
    make_transport: MakeTransport, raw: redis.asyncio.Redis, queue: str
) -> None:
    transport = await make_transport(visibility_timeout=30.0)  # no reclaim pass in the window
    target = f"{queue}-next"
    for n in range(40):
        await transport.publish(queue, f"m-{n}".encode(), message_id=f"b-{n}")
    async with Receiver(transport, queue, prefetch=40) as receiver:
        deliveries = [await get(receiver) for _ in range(40)]
        before = await _script_calls(raw)
        await asyncio.gather(
            *(d.ack(forward=[Outgoing(target, d.body, f"{d.message_id}.next")]) for d in deliveries)
        )
        calls = await _script_calls(raw) - before
    assert all(d.settled for d in deliveries)
    assert calls <= 4, f"40 concurrent acks took {calls} script calls"
    assert await raw.xlen(transport.keys.stream(queue)) == 0
    assert (await raw.xpending(transport.keys.stream(queue), CONSUMER_GROUP))["pending"] == 0
    forwarded = await raw.xrange(transport.keys.stream(target))
    assert sorted(fields[b"body"] for _, fields in forwarded) == sorted(
        f"m-{n}".encode() for n in range(40)
    )


async def test_a_failing_ack_in_a_batch_fails_alone(
    make_transport: MakeTransport, raw: redis.asyncio.Redis, queue: str
) -> None:
    transport = await make_transport()
    good, broken = f"{queue}-good", f"{queue}-broken"
    await raw.set(transport.keys.stream(broken), "not a stream")
    for n in range(3):
        await transport.publish(queue, b"x", message_id=f"p-{n}")
    async with Receiver(transport, queue) as receiver:
        first, bad, last = [await get(receiver) for _ in range(3)]
        outcomes = await asyncio.gather(
            first.ack(forward=[Outgoing(good, b"1", "p-0.next")]),
            bad.ack(forward=[Outgoing(good, b"2", "p-1.next"), Outgoing(broken, b"3", "p-1.x")]),
            last.ack(forward=[Outgoing(good, b"4", "p-2.next")]),
            return_exceptions=True,
        )
        assert outcomes[0] is None and outcomes[2] is None
        assert isinstance(outcomes[1], redis.ResponseError) and "WRONGTYPE" in str(outcomes[1])
        assert first.settled and last.settled and not bad.settled
        entries = await raw.xrange(transport.keys.stream(good))
        assert sorted(fields[b"body"] for _, fields in entries) == [b"1", b"4"]
        pending = await raw.xpending_range(
            transport.keys.stream(queue), CONSUMER_GROUP, min="-", max="+", count=10
        )
        assert [p["message_id"].decode() for p in pending] == [bad.entry_id]
        await bad.nack()


async def test_an_ack_cancelled_before_it_is_sent_acks_nothing(
    make_transport: MakeTransport, raw: redis.asyncio.Redis, queue: str
) -> None:
    transport = await make_transport()
    await transport.publish(queue, b"x", message_id="c-1")
    async with Receiver(transport, queue) as receiver:
        delivery = await get(receiver)
        task = asyncio.ensure_future(delivery.ack(forward=[Outgoing(f"{queue}-n", b"y", "c-2")]))
        await asyncio.sleep(0)  # the ack is queued, its batch not yet sent
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await transport.acks.drain()
        assert not delivery.settled
        assert (await raw.xpending(transport.keys.stream(queue), CONSUMER_GROUP))["pending"] == 1
        assert await raw.exists(transport.keys.stream(f"{queue}-n")) == 0
        await delivery.nack()
        again = await get(receiver)
        assert again.attempt == 2
        await again.ack()


async def test_disconnect_sends_acks_already_made(
    make_transport: MakeTransport, raw: redis.asyncio.Redis, queue: str
) -> None:
    transport = await make_transport()
    await transport.publish(queue, b"x", message_id="d-1")
    receiver = Receiver(transport, queue)
    delivery = await get(receiver)
    ack = asyncio.ensure_future(delivery.ack(forward=[Outgoing(f"{queue}-n", b"y", "d-2")]))
    await asyncio.sleep(0)
    await transport.disconnect()
    await ack
    assert delivery.settled
    assert await raw.xlen(transport.keys.stream(queue)) == 0
    assert await raw.xlen(transport.keys.stream(f"{queue}-n")) == 1
    await receiver.close()


async def _messages_in(raw: redis.asyncio.Redis, stream: str) -> list[str]:
    """Message ids of the entries in ``stream``, wake markers left out."""
    entries = await raw.xrange(stream)
    return sorted(fields[b"message_id"].decode() for _, fields in entries if b"wake" not in fields)


async def _connections_named(raw: redis.asyncio.Redis, name: str) -> int:
    """Connections the server has open whose CLIENT SETNAME is ``name``."""
    return sum(1 for client in await raw.client_list() if client.get("name") == name)


async def test_acks_racing_disconnect_complete_or_fail_cleanly(
    make_transport: MakeTransport, raw: redis.asyncio.Redis, queue: str
) -> None:
    """Acks made before, during and after disconnect(): each is sent or fails; none is lost."""
    name = f"race-{uuid.uuid4().hex[:8]}"
    transport = await make_transport(visibility_timeout=30.0, client_name=name)
    count = 120
    for n in range(count):
        await transport.publish(queue, b"x", message_id=f"r-{n}")
    receiver = Receiver(transport, queue, prefetch=count)
    deliveries = [await get(receiver) for _ in range(count)]

    async def after(turns: int, operation: Callable[[], Awaitable[None]]) -> None:
        for _ in range(turns):
            await asyncio.sleep(0)
        await operation()

    def ack(delivery: RedisDelivery) -> Callable[[], Awaitable[None]]:
        return lambda: delivery.ack(forward=[Outgoing(target, b"y", f"{delivery.message_id}.n")])

    target = f"{queue}-next"
    outcomes = await asyncio.wait_for(
        asyncio.gather(
            after(3, transport.disconnect),
            *(after(n % 60, ack(d)) for n, d in enumerate(deliveries)),
            return_exceptions=True,
        ),
        timeout=15,
    )
    await receiver.close()
    assert outcomes[0] is None, f"disconnect failed: {outcomes[0]!r}"
    failed = []
    for delivery, outcome in zip(deliveries, outcomes[1:], strict=True):
        if outcome is None:
            assert delivery.settled
            continue
        assert isinstance(outcome, TransportConnectionError), f"ack raised {outcome!r}"
        assert "disconnect" in str(outcome)
        assert not delivery.settled
        failed.append(delivery.message_id)
    assert 0 < len(failed) < count, f"{len(failed)} of {count} acks failed: no race was run"
    assert await _messages_in(raw, transport.keys.stream(queue)) == sorted(failed)
    assert await raw.xlen(transport.keys.stream(target)) == count - len(failed)
    for _ in range(100):  # the server notices closed sockets within a few milliseconds
        if await _connections_named(raw, name) == 0:
            break
        await asyncio.sleep(0.02)
    assert await _connections_named(raw, name) == 0, "a connection outlived disconnect()"
    fresh = await make_transport(visibility_timeout=30.0)
    async with Receiver(fresh, queue, prefetch=count) as again:
        back = [await get(again) for _ in range(len(failed))]
        assert sorted(d.message_id for d in back) == sorted(failed)
        assert {d.attempt for d in back} == {2}
        for delivery in back:
            await delivery.ack()
        assert await again.get(timeout=0.3) is None


async def test_an_ack_after_disconnect_raises_and_the_message_comes_back(
    make_transport: MakeTransport, raw: redis.asyncio.Redis, queue: str
) -> None:
    transport = await make_transport(visibility_timeout=30.0)
    await transport.publish(queue, b"x", message_id="late-1")
    receiver = Receiver(transport, queue)
    delivery = await get(receiver)
    await transport.disconnect()
    await receiver.close()
    with pytest.raises(
        TransportConnectionError, match="transport is disconnecting or disconnected"
    ):
        await delivery.ack(forward=[Outgoing(f"{queue}-n", b"y", "late-2")])
    assert not delivery.settled
    assert await raw.exists(transport.keys.stream(f"{queue}-n")) == 0
    await transport.connect()  # acks are accepted again
    async with Receiver(transport, queue) as again:
        back = await get(again)
        assert (back.message_id, back.attempt) == ("late-1", 2)
        await back.ack()
    assert await _messages_in(raw, transport.keys.stream(queue)) == []


async def test_nack_and_dead_letter_after_disconnect_do_nothing(
    make_transport: MakeTransport, raw: redis.asyncio.Redis, queue: str
) -> None:
    """disconnect() released the entries: their leases are gone, so these settles are no-ops."""
    transport = await make_transport(visibility_timeout=30.0)
    await transport.publish(queue, b"x", message_id="n-1")
    await transport.publish(queue, b"y", message_id="d-1")
    receiver = Receiver(transport, queue, prefetch=2)
    nacked, parked = await get(receiver), await get(receiver)
    await transport.disconnect()
    await receiver.close()
    await nacked.nack(delay=5.0)  # never an error, nothing requeued
    await parked.dead_letter("too late")
    await transport.connect()
    async with Receiver(transport, queue, prefetch=2) as again:
        returned = [await get(again), await get(again)]
        back = {(d.message_id, d.attempt) for d in returned}
        assert back == {("n-1", 2), ("d-1", 2)}, "a released entry was settled after disconnect"
        for delivery in returned:
            await delivery.ack()
        assert await again.get(timeout=0.5) is None
    assert await raw.exists(transport.keys.stream(dead_letter_queue(queue))) == 0


async def test_an_unencodable_forward_fails_its_own_ack_only(
    make_transport: MakeTransport, raw: redis.asyncio.Redis, queue: str
) -> None:
    transport = await make_transport()
    for n in range(3):
        await transport.publish(queue, b"x", message_id=f"u-{n}")
    async with Receiver(transport, queue) as receiver:
        first, bad, last = [await get(receiver) for _ in range(3)]
        body: Any = "a str, not bytes"
        outcomes = await asyncio.wait_for(
            asyncio.gather(
                first.ack(forward=[Outgoing(f"{queue}-n", b"1", "u-0.next")]),
                bad.ack(forward=[Outgoing(f"{queue}-n", body, "u-1.next")]),
                last.ack(forward=[Outgoing(f"{queue}-n", b"2", "u-2.next")]),
                return_exceptions=True,
            ),
            timeout=5,
        )
        assert outcomes[0] is None and outcomes[2] is None
        assert isinstance(outcomes[1], TypeError)
        assert first.settled and last.settled and not bad.settled
        assert await raw.xlen(transport.keys.stream(f"{queue}-n")) == 2
        await bad.nack()


async def test_an_ack_whose_source_is_broken_fails_alone(
    make_transport: MakeTransport, raw: redis.asyncio.Redis, queue: str
) -> None:
    transport = await make_transport()
    other = f"{queue}-other"
    await transport.publish(queue, b"x", message_id="s-1")
    await transport.publish(other, b"y", message_id="s-2")
    async with Receiver(transport, queue) as broken_side, Receiver(transport, other) as fine_side:
        broken, fine = await get(broken_side), await get(fine_side)
        source = transport.keys.stream(queue)
        await raw.delete(source)
        await raw.set(source, "not a stream any more")
        outcomes = await asyncio.gather(
            broken.ack(forward=[Outgoing(f"{queue}-n", b"1", "s-1.next")]),
            fine.ack(forward=[Outgoing(f"{queue}-n", b"2", "s-2.next")]),
            return_exceptions=True,
        )
        assert isinstance(outcomes[0], redis.ResponseError) and "WRONGTYPE" in str(outcomes[0])
        assert outcomes[1] is None and fine.settled
        entries = await raw.xrange(transport.keys.stream(f"{queue}-n"))
        assert [fields[b"body"] for _, fields in entries] == [b"2"]
        await raw.delete(source)


async def test_consume_loops_never_starve_publishing_and_settling(
    make_transport: MakeTransport, queue: str
) -> None:
    transport = await make_transport(max_connections=2)
    receivers = [Receiver(transport, f"{queue}-{n}") for n in range(6)]
    try:
        for n, receiver in enumerate(receivers):
            await asyncio.wait_for(transport.publish(f"{queue}-{n}", b"x", message_id=f"p-{n}"), 5)
            delivery = await get(receiver)
            await asyncio.wait_for(delivery.extend(), 5)
            await asyncio.wait_for(delivery.ack(), 5)
        await asyncio.wait_for(transport.publish(queue, b"last", message_id="p-last"), 5)
    finally:
        for receiver in receivers:
            await receiver.close()


async def test_disconnect_returns_while_handlers_keep_acking(
    make_transport: MakeTransport, queue: str
) -> None:
    transport = await make_transport()
    for n in range(400):
        await transport.publish(queue, b"x", message_id=f"loop-{n}")
    acks: set[asyncio.Future[None]] = set()
    busy = asyncio.Event()

    async def forward_forever() -> None:
        async for delivery in transport.consume(queue, prefetch=400):
            hop = f"{delivery.message_id}.{uuid.uuid4().hex[:6]}"
            acks.add(asyncio.ensure_future(delivery.ack(forward=[Outgoing(queue, b"x", hop)])))
            if len(acks) >= 1000:
                busy.set()

    spinning = asyncio.ensure_future(forward_forever())
    await asyncio.wait_for(busy.wait(), timeout=30)
    await asyncio.wait_for(transport.disconnect(), timeout=5)
    await asyncio.wait_for(spinning, timeout=10)
    # Acks made after the disconnect began fail on their own; none is left hanging.
    await asyncio.wait_for(asyncio.gather(*acks, return_exceptions=True), timeout=10)


async def test_forward_dedup_expires_and_can_be_turned_off(
    make_transport: MakeTransport, raw: redis.asyncio.Redis, queue: str
) -> None:
    short = await make_transport(dedup_ttl=0.3)
    off = await make_transport(dedup_ttl=0)
    target = f"{queue}-next"

    async def step(transport: RedisTransport) -> None:
        await transport.publish(queue, b"x", message_id=uuid.uuid4().hex)
        async with Receiver(transport, queue) as receiver:
            delivery = await get(receiver)
            await delivery.ack(forward=[Outgoing(target, b"n", "same-id")])

    await step(short)
    await step(short)  # within the TTL: skipped
    assert await raw.xlen(short.keys.stream(target)) == 1
    await asyncio.sleep(0.4)
    await step(short)  # remembered no longer
    await step(off)
    await step(off)
    assert await raw.xlen(short.keys.stream(target)) == 4


async def test_plain_publish_is_not_deduplicated(make_transport: MakeTransport, queue: str) -> None:
    transport = await make_transport()
    await transport.publish(queue, b"a", message_id="same")
    await transport.publish(queue, b"b", message_id="same")
    async with Receiver(transport, queue) as receiver:
        bodies = []
        for _ in range(2):
            delivery = await get(receiver)
            bodies.append(delivery.body)
            await delivery.ack()
    assert bodies == [b"a", b"b"]


# -- delays ----------------------------------------------------------------------------------


async def test_delayed_messages_survive_a_transport_restart(
    make_transport: MakeTransport, queue: str
) -> None:
    first = await make_transport()
    started = time.monotonic()
    await first.publish(queue, b"later", message_id="late-1", delay=0.8)
    await first.publish(queue, b"now", message_id="now-1")
    async with Receiver(first, queue) as receiver:
        delivery = await get(receiver)
        await delivery.nack(delay=0.8)  # parked again, carrying attempt 1
    await first.disconnect()
    second = await make_transport()
    async with Receiver(second, queue) as receiver:
        got = {}
        for _ in range(2):
            delivery = await get(receiver, timeout=3.0)
            got[delivery.message_id] = delivery.attempt
            await delivery.ack()
    assert time.monotonic() - started >= 0.75
    assert got == {"late-1": 1, "now-1": 2}


async def test_delay_published_while_a_consumer_blocks_is_on_time(
    make_transport: MakeTransport, queue: str
) -> None:
    transport = await make_transport(visibility_timeout=30.0)  # reads block up to 5 s
    async with Receiver(transport, queue) as receiver:
        waiting = asyncio.ensure_future(receiver.get(timeout=5.0))
        await asyncio.sleep(0.3)  # the consumer is blocked in XREADGROUP now
        published = time.monotonic()
        await transport.publish(queue, b"soon", message_id="soon-1", delay=0.5)
        delivery = await waiting
        assert isinstance(delivery, RedisDelivery)
        late = time.monotonic() - published
        assert 0.45 <= late < 0.8, f"delayed 0.5 s, delivered after {late:.3f} s"
        await delivery.ack()


async def test_delete_queue_drops_delayed_messages_too(
    make_transport: MakeTransport, raw: redis.asyncio.Redis, queue: str
) -> None:
    transport = await make_transport()
    await transport.publish(queue, b"x", message_id="x-1", delay=0.3)
    await transport.delete_queue(queue)
    assert not await raw.exists(*transport.keys.queue_keys(queue))
    async with Receiver(transport, queue) as receiver:
        assert await receiver.get(timeout=0.8) is None


# -- recovery --------------------------------------------------------------------------------


async def test_consumer_recovers_when_the_stream_is_deleted(
    make_transport: MakeTransport, raw: redis.asyncio.Redis, queue: str, caplog: Any
) -> None:
    transport = await make_transport(visibility_timeout=30.0)
    caplog.set_level(logging.WARNING, logger="paigeant_redis")
    async with Receiver(transport, queue) as receiver:
        waiting = asyncio.ensure_future(receiver.get(timeout=8.0))
        await asyncio.sleep(0.3)
        await raw.delete(*transport.keys.queue_keys(queue))  # as after an empty restart
        await asyncio.sleep(0.3)
        await transport.publish(queue, b"after", message_id="after-1")
        delivery = await waiting
        assert isinstance(delivery, RedisDelivery) and delivery.message_id == "after-1"
        await delivery.ack()
    assert "recreating it" in caplog.text


async def test_consumer_recovers_when_the_group_is_destroyed(
    make_transport: MakeTransport, raw: redis.asyncio.Redis, queue: str
) -> None:
    transport = await make_transport(visibility_timeout=30.0)
    await transport.publish(queue, b"before", message_id="before-1")
    async with Receiver(transport, queue) as receiver:
        delivery = await get(receiver)
        await delivery.ack()
        await raw.xgroup_destroy(transport.keys.stream(queue), CONSUMER_GROUP)
        await transport.publish(queue, b"after", message_id="after-1")
        delivery = await get(receiver, timeout=8.0)
        assert delivery.message_id == "after-1"
        await delivery.ack()


async def test_connection_errors_while_consuming_are_retried(
    make_transport: MakeTransport, queue: str, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    transport = await make_transport()
    real_read = redis.asyncio.Redis.xreadgroup
    failures = 3

    def flaky_read(self: redis.asyncio.Redis, *args: Any, **kwargs: Any) -> Any:
        nonlocal failures
        if failures:
            failures -= 1
            raise redis.ConnectionError("connection reset by peer")
        return real_read(self, *args, **kwargs)

    # Every client's reads, the consume loop's own connection included.
    monkeypatch.setattr(redis.asyncio.Redis, "xreadgroup", flaky_read)
    caplog.set_level(logging.WARNING, logger="paigeant_redis")
    await transport.publish(queue, b"x", message_id="r-1")
    async with Receiver(transport, queue) as receiver:
        delivery = await get(receiver)
        await delivery.ack()
    assert failures == 0
    assert "unavailable while consuming" in caplog.text
    assert "reachable again" in caplog.text


async def test_killed_connections_do_not_stop_a_consumer(
    make_transport: MakeTransport, raw: redis.asyncio.Redis, queue: str
) -> None:
    name = f"paigeant-test-{uuid.uuid4().hex[:8]}"
    transport = await make_transport(client_name=name)
    async with Receiver(transport, queue) as receiver:
        waiting = asyncio.ensure_future(receiver.get(timeout=8.0))
        for _ in range(3):
            await asyncio.sleep(0.2)
            for client in await raw.client_list():
                if client["name"] == name:
                    await raw.client_kill_filter(_id=client["id"])
        await transport.publish(queue, b"x", message_id="k-1")
        delivery = await waiting
        assert isinstance(delivery, RedisDelivery) and delivery.message_id == "k-1"
        await delivery.ack()


async def test_consumer_survives_an_empty_redis_restart(private_redis: Any, caplog: Any) -> None:
    transport = RedisTransport(url=private_redis.url, visibility_timeout=30.0)
    await transport.connect()
    caplog.set_level(logging.WARNING, logger="paigeant_redis")
    try:
        queue = "restart"
        await transport.publish(queue, b"before", message_id="before-1")
        async with Receiver(transport, queue) as receiver:
            delivery = await get(receiver)
            await delivery.ack()
            waiting = asyncio.ensure_future(receiver.get(timeout=10.0))
            await asyncio.sleep(0.2)
            private_redis.restart(down_for=0)  # killed and started again, empty
            published = False
            for _ in range(50):  # publishing fails until the pool reconnects
                try:
                    await transport.publish(queue, b"after", message_id="after-1")
                    published = True
                    break
                except TransportConnectionError:
                    await asyncio.sleep(0.1)
            assert published
            delivery = await waiting
            assert isinstance(delivery, RedisDelivery) and delivery.message_id == "after-1"
            await delivery.ack()
    finally:
        await transport.disconnect()
    # Either the read that reconnected got NOGROUP, or the loop noticed after its outage.
    assert re.search(r"consumer group of queue restart (is|was) missing", caplog.text)


# -- connection and configuration --------------------------------------------------------------


@pytest.mark.no_redis
async def test_unreachable_redis_names_the_url() -> None:
    transport = RedisTransport(url="redis://user:s3cret@127.0.0.1:1/0", connect_timeout=1.0)
    with pytest.raises(TransportConnectionError, match=r"127\.0\.0\.1:1") as raised:
        await transport.connect()
    assert "s3cret" not in str(raised.value)
    assert "PAIGEANT_REDIS_URL" in str(raised.value)


@pytest.mark.no_redis
def test_url_from_argument_then_environment_then_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAIGEANT_REDIS_URL", "redis://127.0.0.1:6390/2")
    assert RedisTransport().url == "redis://127.0.0.1:6390/2"
    assert RedisTransport(url="redis://127.0.0.1:6391/0").url == "redis://127.0.0.1:6391/0"
    monkeypatch.delenv("PAIGEANT_REDIS_URL")
    assert RedisTransport().url == "redis://127.0.0.1:6379/0"
    with pytest.raises(ValueError, match="Redis URL"):
        RedisTransport(url="http://127.0.0.1:6379")


@pytest.mark.no_redis
def test_registered_as_the_redis_transport() -> None:
    reset_plugins()
    try:
        registration = registrations("transport")["redis"]
        assert registration.distribution == "paigeant-redis"
        transport = get_transport("redis", url="redis://127.0.0.1:6379/0", key_prefix="x")
        assert isinstance(transport, RedisTransport)
        assert transport.crosses_processes
        assert transport.keys.stream("a.b") == "x:q:a.b"
    finally:
        reset_plugins()


async def test_idle_consumers_holding_nothing_are_pruned(
    make_transport: MakeTransport,
    raw: redis.asyncio.Redis,
    queue: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    transport = await make_transport()
    stream = transport.keys.stream(queue)
    await raw.xgroup_create(stream, CONSUMER_GROUP, id="0", mkstream=True)
    await raw.xgroup_createconsumer(stream, CONSUMER_GROUP, "gone-idle")
    await transport.publish(queue, b"x", message_id="held-by-ghost")
    holder = await ghost_takes(raw, stream)
    monkeypatch.setattr(consumer_module, "PRUNE_IDLE_MS", 0)
    await asyncio.sleep(0.01)
    async with Receiver(transport, queue) as receiver:
        assert await receiver.get(timeout=0.3) is None
    names = {c["name"] for c in await raw.xinfo_consumers(stream, CONSUMER_GROUP)}
    assert b"gone-idle" not in names
    assert holder.encode() in names, "a consumer with pending entries was deleted"
