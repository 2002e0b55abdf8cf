"""Behaviour specific to RabbitMQTransport: topology, headers, foreign messages, limits, errors."""

from __future__ import annotations

import asyncio
import gc
import logging
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest
import pytest_asyncio
from aio_pika.abc import AbstractChannel
from pamqp.commands import Basic

from paigeant import (
    DEAD_LETTER_QUEUE_HEADER,
    DEAD_LETTER_REASON_HEADER,
    DeadLetters,
    QueueStats,
    TransportConnectionError,
    dead_letter_queue,
    get_transport,
)
from paigeant.testing import Receiver
from paigeant_rabbitmq import (
    MAX_DELAY,
    PublishRefusedError,
    RabbitMQDelivery,
    RabbitMQTransport,
    UnroutableError,
    _topology,
)
from paigeant_rabbitmq._headers import message_id_of, properties
from paigeant_rabbitmq._names import delay_queue


@pytest_asyncio.fixture
async def raw(rabbitmq_url: str) -> AsyncIterator[AbstractChannel]:
    """A plain aio-pika channel on the shared node, to look at and tamper with queues."""
    connection = await aio_pika.connect(rabbitmq_url)
    channel = await connection.channel()
    yield channel
    await connection.close()


@pytest_asyncio.fixture
async def queue(transport: RabbitMQTransport) -> AsyncIterator[str]:
    """A fresh queue name; the queue, its delays and its dead letters are deleted after."""
    name = f"pgtest.{uuid.uuid4().hex[:12]}"
    yield name
    await transport.delete_queue(name)
    await transport.delete_queue(dead_letter_queue(name))


async def get(receiver: Receiver, timeout: float = 5.0) -> RabbitMQDelivery:
    delivery = await receiver.get(timeout)
    assert isinstance(delivery, RabbitMQDelivery), f"no delivery within {timeout}s"
    return delivery


# -- the plugin and options ------------------------------------------------------------------


@pytest.mark.no_rabbitmq
def test_registered_as_rabbitmq_with_the_url_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PAIGEANT_RABBITMQ_URL", "amqp://u:p@10.9.8.7:5999/vh")
    transport = get_transport("rabbitmq")
    assert isinstance(transport, RabbitMQTransport)
    assert transport.url == "amqp://u:p@10.9.8.7:5999/vh"
    assert RabbitMQTransport(url="amqp://127.0.0.1:5000/").url == "amqp://127.0.0.1:5000/"
    monkeypatch.delenv("PAIGEANT_RABBITMQ_URL")
    assert RabbitMQTransport().url == "amqp://guest:guest@127.0.0.1:5672/"


@pytest.mark.no_rabbitmq
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"url": "redis://127.0.0.1"}, "unsupported RabbitMQ URL"),
        ({"visibility_timeout": 0}, "visibility_timeout"),
        ({"max_deliveries": 0}, "max_deliveries"),
        ({"delivery_limit": 0}, "delivery_limit"),
        ({"publish_timeout": -1}, "publish_timeout"),
        ({"connect_attempts": 0}, "connect_attempts"),
    ],
)
def test_bad_options_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RabbitMQTransport(**options)  # type: ignore[arg-type]


@pytest.mark.no_rabbitmq
def test_paigeant_plugins_lists_the_rabbitmq_transport() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "paigeant", "plugins"],
        capture_output=True,
        text=True,
        check=False,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stdout.splitlines() if "paigeant-rabbitmq" in line)
    assert "rabbitmq" in line.replace("paigeant-rabbitmq", "") and "0.1.0" in line


async def test_a_refused_connection_names_the_host_never_the_password() -> None:
    transport = RabbitMQTransport(
        url="amqp://alice:s3cret@127.0.0.1:1/", connect_attempts=1, connect_timeout=1
    )
    with pytest.raises(TransportConnectionError) as refused:
        await transport.connect()
    assert "127.0.0.1:1" in str(refused.value)
    assert "s3cret" not in str(refused.value) and "s3cret" not in repr(transport)


@pytest.mark.parametrize(
    ("url", "says", "secret"),
    [
        ("amqp://guest:wrong-s3cret@127.0.0.1:5672/", "password", "wrong-s3cret"),
        (
            "amqp://guest:guest@127.0.0.1:5672/no%2Fsuch-vhost",
            "virtual host 'no/such-vhost'",
            "guest:guest",
        ),
    ],
    ids=["wrong-credentials", "missing-virtual-host"],
)
async def test_a_refused_login_fails_connect_naming_the_host_and_what_to_check(
    url: str, says: str, secret: str
) -> None:
    transport = RabbitMQTransport(url=url, connect_attempts=1)
    with pytest.raises(TransportConnectionError) as refused:
        await transport.connect()
    text = str(refused.value)
    assert "127.0.0.1:5672" in text and says in text
    assert secret not in text


async def test_failed_connection_attempts_leave_no_connection_open() -> None:
    # An open one's __del__ schedules close(); collected outside a loop, that coroutine is
    # never awaited (a RuntimeWarning in whatever test runs the garbage collector then).
    gc.collect()
    gc.disable()  # the failed attempts' connections stay in their reference cycles: inspectable
    try:
        before = {id(o) for o in gc.get_objects() if isinstance(o, aio_pika.Connection)}
        for url in ("amqp://guest:guest@127.0.0.1:1/", "amqp://guest:wrong@127.0.0.1:5672/"):
            with pytest.raises(TransportConnectionError):
                await RabbitMQTransport(url=url, connect_attempts=2, connect_timeout=2).connect()
        attempts = [
            o
            for o in gc.get_objects()
            if isinstance(o, aio_pika.Connection) and id(o) not in before
        ]
        assert len(attempts) >= 2, "the failed attempts' connections were not found to check"
        assert [c for c in attempts if not c.is_closed] == []
    finally:
        gc.enable()


async def test_bad_queue_names_and_delays_are_refused(transport: RabbitMQTransport) -> None:
    for bad in ("", "amq.mine", "a..b", "wild.*", "hash.#", "x" * 300):
        with pytest.raises(ValueError, match="queue name"):
            await transport.publish(bad, b"x", message_id="m")
    with pytest.raises(ValueError, match="longest supported"):
        await transport.publish("pgtest.later", b"x", message_id="m", delay=MAX_DELAY + 1)
    with pytest.raises(ValueError, match="non-negative"):
        await transport.publish("pgtest.later", b"x", message_id="m", delay=-1)


# -- topology --------------------------------------------------------------------------------


async def test_queues_are_quorum_queues_with_at_least_once_dead_letters(
    transport: RabbitMQTransport, queue: str, raw: AbstractChannel
) -> None:
    await transport.publish(queue, b"x", message_id="m", delay=0.005)  # levels 2 and 0
    for name in (queue, dead_letter_queue(queue), delay_queue(queue, 2), delay_queue(queue, 0)):
        await raw.declare_queue(name, passive=True)  # raises if missing
    # Declaring it as a classic queue is refused: it exists as a quorum queue.
    with pytest.raises(aio_pika.exceptions.ChannelPreconditionFailed):
        await raw.declare_queue(queue, durable=True)


async def test_a_queue_declared_with_other_arguments_is_used_as_it_is(
    rabbitmq_url: str, queue: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with RabbitMQTransport(url=rabbitmq_url, max_deliveries=3) as first:
        await first.publish(queue, b"1", message_id="one")
    async with RabbitMQTransport(url=rabbitmq_url, max_deliveries=7) as second:
        with caplog.at_level(logging.WARNING):
            await second.publish(queue, b"2", message_id="two")
        assert "already exists with other arguments" in caplog.text
        async with Receiver(second, queue) as receiver:
            assert [(await get(receiver)).message_id for _ in range(2)] == ["one", "two"]


# -- messages --------------------------------------------------------------------------------


async def test_foreign_messages_get_a_stable_id_and_string_headers(
    transport: RabbitMQTransport, queue: str, raw: AbstractChannel
) -> None:
    await transport.publish(queue, b"first", message_id="mine")  # declares it
    foreign = aio_pika.Message(
        b"from elsewhere", message_id="theirs", headers={"n": 7, "ok": True, "l": [1, "a"]}
    )
    await raw.default_exchange.publish(foreign, routing_key=queue)
    async with Receiver(transport, queue) as receiver:
        mine = await get(receiver)
        theirs = await get(receiver)
    assert (mine.message_id, mine.headers, mine.attempt) == ("mine", {}, 1)
    assert theirs.message_id == "theirs"
    assert theirs.headers == {"n": "7", "ok": "True", "l": "[1, 'a']"}
    assert "x-delivery-count" not in theirs.headers


async def test_the_brokers_delivery_limit_dead_letters_with_its_reason(
    transport: RabbitMQTransport, queue: str, raw: AbstractChannel
) -> None:
    """A message whose consumers keep dying is parked by the broker; the reason is mapped."""
    await transport.publish(queue, b"poison", message_id="poison")
    source = await raw.get_queue(queue)
    for _ in range(transport.delivery_limit + 1):  # every delivery's consumer "dies"
        message = await source.get(timeout=5)
        assert message is not None
        await message.reject(requeue=True)
    async with Receiver(transport, dead_letter_queue(queue)) as dead:
        parked = await get(dead)
    assert parked.message_id == "poison"
    assert "delivery limit" in parked.headers[DEAD_LETTER_REASON_HEADER]
    assert parked.headers[DEAD_LETTER_QUEUE_HEADER] == queue
    assert not any(key.startswith("x-death") for key in parked.headers)


async def test_repeated_delayed_nacks_are_never_dropped_as_dead_letter_cycles(
    rabbitmq_url: str, queue: str
) -> None:
    """Each delayed copy is a fresh message: no x-death history the broker could call a cycle."""
    async with RabbitMQTransport(url=rabbitmq_url, max_deliveries=10) as transport:
        await transport.publish(queue, b"again", message_id="again", headers={"k": "v"})
        async with Receiver(transport, queue) as receiver:
            for attempt in range(1, 5):
                delivery = await get(receiver)
                assert (delivery.attempt, delivery.headers) == (attempt, {"k": "v"})
                await delivery.nack(delay=0.03)
            last = await get(receiver)
            assert last.attempt == 5
            await last.ack()


@pytest.mark.no_rabbitmq
def test_a_message_without_an_id_gets_one_from_its_body() -> None:
    bare = Basic.Properties()
    assert message_id_of(bare, b"body") == message_id_of(bare, b"body")
    assert message_id_of(bare, b"body").startswith("amqp-")
    assert message_id_of(bare, b"body") != message_id_of(bare, b"other")
    assert message_id_of(Basic.Properties(message_id="given"), b"body") == "given"


async def test_a_day_long_delay_is_counted_and_purged_with_its_queue(
    transport: RabbitMQTransport, queue: str
) -> None:
    await transport.publish(queue, b"tomorrow", message_id="tomorrow", delay=86_400)
    assert await transport.stats(queue) == QueueStats(0, 0, 1, 0)
    await transport.delete_queue(queue)
    assert await transport.stats(queue) == QueueStats(0, 0, 0, 0)


async def test_a_message_prefetched_but_never_taken_keeps_its_attempt(
    transport: RabbitMQTransport, queue: str
) -> None:
    """Closing a loop gives back what it prefetched without counting it as a delivery."""
    await transport.publish(queue, b"1", message_id="taken")
    await transport.publish(queue, b"2", message_id="untouched")
    async with Receiver(transport, queue, prefetch=2) as first:
        taken = await get(first)
        assert taken.message_id == "taken"
        await asyncio.sleep(0.2)  # "untouched" is pushed to this loop meanwhile
        await taken.ack()
    async with Receiver(transport, queue) as second:
        again = await get(second)
    assert (again.message_id, again.attempt) == ("untouched", 1)


async def test_closing_a_loop_waits_for_a_give_back_in_flight(
    rabbitmq_url: str, queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message the reaper is giving back when the loop closes is acknowledged on its channel
    before the channel goes: it comes back once, uncounted (not also requeued, counted)."""
    async with RabbitMQTransport(url=rabbitmq_url, visibility_timeout=0.3) as transport:
        await transport.publish(queue, b"1", message_id="taken")
        await transport.publish(queue, b"2", message_id="untouched")
        publish_unseen = transport.publish_unseen
        returning = asyncio.Event()

        async def slow_publish_unseen(*args: Any) -> None:
            returning.set()
            await asyncio.sleep(0.3)  # the loop closes meanwhile
            await publish_unseen(*args)

        monkeypatch.setattr(transport, "publish_unseen", slow_publish_unseen)
        async with Receiver(transport, queue, prefetch=2) as first:
            taken = await get(first)
            assert taken.message_id == "taken"
            await taken.ack()
            await asyncio.wait_for(returning.wait(), 5)  # the reaper gives "untouched" back
        monkeypatch.undo()
        async with Receiver(transport, queue) as second:
            again = await get(second)
            assert (again.message_id, again.attempt) == ("untouched", 1)
            await again.ack()
            assert await second.get(0.5) is None  # once: not requeued beside its copy


#: A quorum queue made by hand with a length limit (the transport uses it as it is).
ONE_MESSAGE_QUEUE = {"x-queue-type": "quorum", "x-max-length": 1, "x-overflow": "reject-publish"}


async def test_a_negative_confirm_raises_publish_refused_and_keeps_what_was_taken(
    transport: RabbitMQTransport,
    raw: AbstractChannel,
    queue: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A full queue's refusal, once past the moment a new queue may still be starting."""
    monkeypatch.setattr(_topology, "QUEUE_START_GRACE", 0.0)
    await raw.declare_queue(queue, durable=True, arguments=ONE_MESSAGE_QUEUE)
    taken: list[str] = []
    started = time.monotonic()
    with pytest.raises(PublishRefusedError, match="negative confirm"):
        for i in range(10):  # a quorum queue may take one over the limit before it refuses
            await transport.publish(queue, f"{i}".encode(), message_id=f"m-{i}")
            taken.append(f"m-{i}")
    assert time.monotonic() - started < 1.0  # at once: not retried
    assert 1 <= len(taken) <= 2
    async with Receiver(transport, queue) as receiver:
        for message_id in taken:
            delivery = await get(receiver)
            assert delivery.message_id == message_id
            await delivery.ack()


async def fill(raw: AbstractChannel, queue: str) -> aio_pika.abc.AbstractQueue:
    """Declare ``queue`` as a ONE_MESSAGE_QUEUE and publish to it until it refuses."""
    made = await raw.declare_queue(queue, durable=True, arguments=ONE_MESSAGE_QUEUE)
    for i in range(5):  # a quorum queue may take one over the limit
        try:
            await raw.default_exchange.publish(aio_pika.Message(b"x", message_id=f"f-{i}"), queue)
        except aio_pika.exceptions.DeliveryError:
            return made
    raise AssertionError(f"{queue} took 5 messages: it has no length limit")


async def test_a_negative_confirm_just_after_declaring_is_sent_again_until_taken(
    transport: RabbitMQTransport, raw: AbstractChannel, queue: str
) -> None:
    """A quorum queue another client is declaring is declare-ok'd here before it runs, and
    refuses publishes until it does: shortly after declaring, a refusal is sent again.

    Stood in for by a full queue (declared by hand) that a consumer empties 0.3 s later.
    """
    made = await fill(raw, queue)

    async def empty_it_later() -> None:
        await asyncio.sleep(0.3)
        while (message := await made.get(timeout=5, fail=False)) is not None:
            await message.ack()

    emptying = asyncio.ensure_future(empty_it_later())
    started = time.monotonic()
    await transport.publish(queue, b"second", message_id="second")
    assert time.monotonic() - started >= 0.25  # refused until the queue had room, not lost
    await emptying
    async with Receiver(transport, queue) as receiver:
        delivery = await get(receiver)
        assert (delivery.message_id, delivery.body) == ("second", b"second")
        await delivery.ack()
        assert await receiver.get(0.5) is None  # taken once


async def test_a_refusal_lasting_past_the_start_grace_is_raised(
    transport: RabbitMQTransport,
    raw: AbstractChannel,
    queue: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_topology, "QUEUE_START_GRACE", 0.5)
    made = await fill(raw, queue)
    held = (await made.declare()).message_count
    started = time.monotonic()
    with pytest.raises(PublishRefusedError, match="negative confirm"):
        await transport.publish(queue, b"never", message_id="never")
    assert 0.3 <= time.monotonic() - started < 2.0
    assert (await made.declare()).message_count == held  # the refused one was not queued


async def test_a_message_nothing_routes_raises_unroutable(transport: RabbitMQTransport) -> None:
    """Publisher confirms with mandatory: a returned message raises instead of passing."""
    missing = f"pgtest.missing.{uuid.uuid4().hex[:8]}"
    with pytest.raises(UnroutableError, match=missing):
        await transport.publisher.publish("", missing, b"x", properties("lost", {}), target=missing)


async def test_delete_queue_takes_an_empty_dead_letter_queue_along_and_keeps_a_full_one(
    transport: RabbitMQTransport, rabbitmq_url: str
) -> None:
    """Every work queue has a dead-letter queue declared before it; deleting a queue that
    never had a dead letter (a dispatcher's reply queue) leaves nothing behind."""
    empty, full = (f"pgtest.{uuid.uuid4().hex[:12]}" for _ in range(2))
    for name in (empty, full):
        await transport.publish(name, b"x", message_id=f"{name}-1")
    async with Receiver(transport, full) as receiver:
        await (await get(receiver)).dead_letter("kept")
    for name in (empty, full):
        await transport.delete_queue(name)
    connection = await aio_pika.connect(rabbitmq_url)
    try:
        with pytest.raises(aio_pika.exceptions.ChannelNotFoundEntity):
            await (await connection.channel()).declare_queue(dead_letter_queue(empty), passive=True)
    finally:
        await connection.close()
    assert (await transport.stats(full)).dead == 1
    await transport.delete_queue(dead_letter_queue(full))


async def test_a_queue_deleted_by_hand_gets_its_delayed_messages_once_declared_again(
    transport: RabbitMQTransport, raw: AbstractChannel, rabbitmq_url: str, queue: str
) -> None:
    """Declaring a work queue binds it to the end of the delay ladder, so whoever declares it
    again (a consumer, here a new process) also brings back the route of its delayed messages."""
    await transport.publish(queue, b"later", message_id="later", delay=2.0)
    await raw.queue_delete(queue)  # by hand: the delayed message is in the ladder, unrouted
    async with RabbitMQTransport(url=rabbitmq_url) as other, Receiver(other, queue) as receiver:
        delivery = await get(receiver, 15)
        assert (delivery.message_id, delivery.body) == ("later", b"later")
        await delivery.ack()


async def test_a_consumer_with_a_stuck_step_is_pushed_no_more_than_its_prefetch(
    transport: RabbitMQTransport, queue: str
) -> None:
    """One lease of four runs out while the other three are extended: the broker may push one
    message in its place (the slot its requeue freed), never a new consumer's worth more."""
    for i in range(12):
        await transport.publish(queue, f"{i}".encode(), message_id=f"s-{i}")
    async with Receiver(transport, queue, prefetch=4) as receiver:
        held = [await get(receiver) for _ in range(4)]
        (loop,) = [loop for loop in transport._loops if loop.queue == queue]
        pushed = []
        for _ in range(12):  # 2.4 s: the fourth lease (1 s) runs out, the others are kept
            await asyncio.sleep(0.2)
            for delivery in held[:3]:
                await delivery.extend()
            pushed.append(loop.waiting)
        assert held[3].lease_lost and not any(d.lease_lost for d in held[:3])
        assert max(pushed) <= 1, pushed
        for delivery in held:
            await delivery.ack()
        for _ in range(9):  # and everything else still comes through
            await (await get(receiver)).ack()


async def test_after_every_lease_ran_out_the_consumer_gets_its_whole_prefetch_back(
    transport: RabbitMQTransport, queue: str
) -> None:
    """Zombies pause the consumer; as they settle one by one it comes back at full prefetch
    (a basic.qos reaches only consumers made after it, so each change re-consumes)."""
    for i in range(6):
        await transport.publish(queue, f"{i}".encode(), message_id=f"z-{i}")
    async with Receiver(transport, queue, prefetch=2) as receiver:
        first, second = await get(receiver), await get(receiver)
        await asyncio.sleep(transport.visibility_timeout + 1.0)  # both leases run out
        assert first.lease_lost and second.lease_lost
        await first.ack()  # one slot back: consuming again, one message at a time
        await asyncio.sleep(0.5)
        await second.ack()  # both back
        await asyncio.sleep(0.5)
        # Two unsettled at once, well within one lease (no expiry makes room for the second).
        held = [await get(receiver, 0.5), await get(receiver, 0.5)]
        assert len({delivery.message_id for delivery in held}) == 2
        assert not any(delivery.lease_lost for delivery in held)
        for delivery in held:
            await delivery.ack()


async def test_stats_count_what_another_loop_prefetched_as_ready(
    transport: RabbitMQTransport, queue: str
) -> None:
    await transport.publish(queue, b"1", message_id="a")
    await transport.publish(queue, b"2", message_id="b")
    async with Receiver(transport, queue, prefetch=2) as receiver:
        held = await get(receiver)
        await asyncio.sleep(0.2)
        assert await transport.stats(queue) == QueueStats(1, 1, 0, 0)
        await held.ack()


# -- through workers and tools ---------------------------------------------------------------


async def test_the_dead_letter_tools_meet_no_argument_mismatch(
    transport: RabbitMQTransport, queue: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Reading a dead-letter queue declares it with its own arguments, not a work queue's
    (the conformance suite lists and redrives; this is the RabbitMQ-specific part)."""
    caplog.set_level(logging.WARNING, logger="paigeant_rabbitmq")
    await transport.publish(queue, b"dl", message_id="dl")
    async with Receiver(transport, queue) as receiver:
        await (await get(receiver)).dead_letter("for the tools")
    listed = await DeadLetters(transport, queue).list()
    assert [letter.id for letter in listed] == ["dl"]
    assert "other arguments" not in caplog.text


async def test_disconnect_gives_back_prefetched_messages_with_their_true_attempt(
    rabbitmq_url: str, queue: str
) -> None:
    async with RabbitMQTransport(url=rabbitmq_url) as first:
        for n in range(3):
            await first.publish(queue, b"x", message_id=f"p-{n}")
        receiver = Receiver(first, queue, prefetch=3)
        taken = await get(receiver)
        await taken.ack()
        await asyncio.sleep(0.2)  # the other two are pushed to this loop meanwhile
    async with RabbitMQTransport(url=rabbitmq_url) as second, Receiver(second, queue) as again:
        rest = [await get(again), await get(again)]
        assert sorted((d.message_id, d.attempt) for d in rest) == [("p-1", 1), ("p-2", 1)]
        for delivery in rest:
            await delivery.ack()


async def test_stats_beside_publishes_to_new_queues_breaks_none_of_them(
    transport: RabbitMQTransport, queue: str
) -> None:
    """Passive declares of missing delay queues must not fail other queues' declarations."""
    names = [f"{queue}.{n}" for n in range(12)]
    try:
        outcomes = await asyncio.gather(
            transport.stats(queue),
            *(transport.publish(name, b"x", message_id="m") for name in names),
            return_exceptions=True,
        )
        assert [o for o in outcomes if isinstance(o, BaseException)] == []
    finally:
        for name in names:
            await transport.delete_queue(name)
            await transport.delete_queue(dead_letter_queue(name))


async def test_a_loop_left_open_across_a_reconnect_ends_instead_of_spinning(
    rabbitmq_url: str, queue: str
) -> None:
    transport = RabbitMQTransport(url=rabbitmq_url)
    await transport.connect()
    old = transport.consume(queue)
    waiting = asyncio.ensure_future(anext(old))
    await asyncio.sleep(0.2)
    await transport.disconnect()
    await transport.connect()
    try:
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(waiting, 5)
        assert transport._loops == set()  # no session keeps being opened behind our back
    finally:
        await transport.disconnect()
