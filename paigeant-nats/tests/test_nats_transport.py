"""Behaviour specific to NatsTransport: layout, headers, foreign messages, dedup, stats, limits."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable

import nats
import pytest
import pytest_asyncio
from nats.aio.client import Client
from nats.js.api import AckPolicy, DiscardPolicy, RetentionPolicy, StorageType

from paigeant import (
    DEAD_LETTER_QUEUE_HEADER,
    DEAD_LETTER_REASON_HEADER,
    ConfigurationError,
    MessageTooLargeError,
    Outgoing,
    QueueStats,
    dead_letter_queue,
    get_transport,
)
from paigeant.testing import Receiver
from paigeant_nats import (
    DEAD_LETTER_ROOM,
    NatsDelivery,
    NatsTransport,
    PublishRefusedError,
    QueueFullError,
)
from paigeant_nats._codec import payload_size
from paigeant_nats.delivery import (
    BODY_SHA256_HEADER,
    MAX_REASON_BYTES,
    MAX_REASON_CHARS,
    TRUNCATED_FROM_HEADER,
)

from .conftest import NatsServer


@pytest_asyncio.fixture
async def raw(nats_url: str) -> AsyncIterator[Client]:
    """A plain nats-py client on the shared server, to look at and tamper with streams."""

    async def quiet(exc: Exception) -> None:
        pass

    client = await nats.connect(nats_url, error_cb=quiet)
    yield client
    await client.close()


@pytest.fixture
def queue() -> str:
    """A fresh queue name (the run's prefix keeps it apart from everything else)."""
    return f"q-{uuid.uuid4().hex[:12]}"


async def get(receiver: Receiver, timeout: float = 5.0) -> NatsDelivery:
    delivery = await receiver.get(timeout)
    assert isinstance(delivery, NatsDelivery), f"no delivery within {timeout}s"
    return delivery


# -- the plugin and options ------------------------------------------------------------------


@pytest.mark.no_nats
def test_registered_as_nats_with_url_and_prefix_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PAIGEANT_NATS_URL", "nats://10.9.8.7:4333")
    monkeypatch.setenv("PAIGEANT_NATS_PREFIX", "envprefix")
    transport = get_transport("nats")
    assert isinstance(transport, NatsTransport)
    assert (transport.url, transport.names.prefix) == ("nats://10.9.8.7:4333", "envprefix")
    explicit = NatsTransport(url="nats://127.0.0.1:5000", prefix="mine")
    assert (explicit.url, explicit.names.prefix) == ("nats://127.0.0.1:5000", "mine")
    monkeypatch.delenv("PAIGEANT_NATS_URL")
    monkeypatch.delenv("PAIGEANT_NATS_PREFIX")
    default = NatsTransport()
    assert (default.url, default.names.prefix) == ("nats://127.0.0.1:4222", "paigeant")


@pytest.mark.no_nats
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"prefix": "a.b"}, "invalid NATS prefix"),
        ({"url": "redis://127.0.0.1"}, "unsupported NATS URL"),
        ({"visibility_timeout": 0}, "visibility_timeout"),
        ({"max_deliveries": 0}, "max_deliveries"),
        ({"duplicate_window": 0.01}, "duplicate_window"),
        ({"replicas": 2}, "replicas"),
        ({"max_queue_bytes": 0}, "max_queue_bytes"),
        ({"connect_attempts": 0}, "connect_attempts"),
    ],
)
def test_bad_options_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        NatsTransport(**options)  # type: ignore[arg-type]


@pytest.mark.no_nats
def test_a_password_never_shows() -> None:
    transport = NatsTransport(url="nats://alice:s3cret@127.0.0.1:4222")
    assert "s3cret" not in repr(transport) and "s3cret" not in transport.safe_url
    with pytest.raises(ValueError) as refused:
        NatsTransport(url="http://alice:s3cret@127.0.0.1:4222")
    assert "s3cret" not in str(refused.value)


async def test_bad_queue_names_are_refused_naming_the_queue(transport: NatsTransport) -> None:
    for bad in ("has space", "a..b", "wild.*", "tail.>", ""):
        with pytest.raises(ValueError, match="invalid queue name"):
            await transport.publish(bad, b"x", message_id="m")


# -- layout ----------------------------------------------------------------------------------


async def test_streams_and_consumer_are_created_as_documented(
    transport: NatsTransport, raw: Client, queue: str
) -> None:
    await transport.publish(queue, b"x", message_id="m-1")
    manager = raw.jsm()
    info = await manager.stream_info(transport.names.stream(queue))
    config = info.config
    assert config.subjects == [f"{transport.names.prefix}.q.{queue}"]
    assert config.description == queue
    assert config.retention == RetentionPolicy.WORK_QUEUE
    assert config.storage == StorageType.FILE
    assert config.discard == DiscardPolicy.NEW
    assert (config.max_msgs, config.max_bytes) == (1_000_000, -1)  # -1: nothing reserved
    assert config.duplicate_window == 600.0
    async with Receiver(transport, queue) as receiver:
        delivery = await get(receiver)
        consumer = await manager.consumer_info(transport.names.stream(queue), "paigeant")
        assert consumer.config.ack_policy == AckPolicy.EXPLICIT
        assert consumer.config.ack_wait == transport.visibility_timeout
        assert consumer.config.max_deliver == -1
        assert consumer.config.max_ack_pending == -1
        assert not consumer.config.backoff and not consumer.config.filter_subject
        await delivery.ack()
    delayed = await manager.consumer_info(transport.names.delay_stream, "paigeant-promoter")
    assert delayed.config.max_ack_pending == -1 and delayed.config.max_deliver == -1


async def _created_elsewhere_later(transport: NatsTransport, raw: Client, queue: str) -> None:
    await asyncio.sleep(0.3)
    await raw.jsm().add_stream(transport.streams.queue_config(queue))


async def test_a_publish_waits_for_a_stream_another_process_is_still_creating(
    transport: NatsTransport, raw: Client, queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # JetStream 2.9 answers an identical create of a stream another client is creating before
    # that stream subscribes its subject, so "no responders" can follow a successful create.
    # Stand in for that answer with a create that returns at once, the stream appearing later.
    creates: list[str] = []

    async def create_returns_early(name: str) -> None:
        creates.append(name)

    monkeypatch.setattr(transport.streams, "ensure_queue", create_returns_early)
    elsewhere = asyncio.ensure_future(_created_elsewhere_later(transport, raw, queue))
    await transport.publish(queue, b"late stream", message_id="late-1")
    await elsewhere
    assert len(creates) >= 2, creates  # asked again while it kept answering "no responders"
    monkeypatch.undo()
    async with Receiver(transport, queue) as receiver:
        delivery = await get(receiver)
        assert (delivery.message_id, delivery.body) == ("late-1", b"late stream")
        await delivery.ack()


async def test_a_publish_no_stream_ever_captures_fails_within_publish_timeout(
    nats_url: str, prefix: str, queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with NatsTransport(url=nats_url, prefix=prefix, publish_timeout=0.6) as transport:

        async def create_that_does_nothing(name: str) -> None:
            pass

        monkeypatch.setattr(transport.streams, "ensure_queue", create_that_does_nothing)
        started = time.monotonic()
        with pytest.raises(PublishRefusedError, match=r"no stream captures .* even after creating"):
            await transport.publish(queue, b"x", message_id="never")
        assert 0.6 <= time.monotonic() - started < 3.0


async def test_a_stream_of_another_tool_on_the_queue_subject_is_a_configuration_error(
    transport: NatsTransport, raw: Client, queue: str
) -> None:
    other = f"OTHER_{uuid.uuid4().hex[:8]}"
    await raw.jsm().add_stream(name=other, subjects=[transport.names.subject(queue)])
    try:
        # A publish lands in the other stream; creating the queue's own stream is refused.
        with pytest.raises(ConfigurationError, match=r"already captures .* another prefix"):
            await transport.streams.ensure_queue(queue)
    finally:
        await raw.jsm().delete_stream(other)


async def test_streams_reserve_no_storage_unless_max_queue_bytes_is_set(
    make_server: Callable[..., NatsServer], queue: str
) -> None:
    server = make_server(config="jetstream {\n  max_file_store: 10MB\n}\n")
    async with NatsTransport(url=server.url) as unlimited:  # default: no byte limit
        for index in range(12):  # 12 streams would reserve 12 GiB at the old 1 GiB each
            await unlimited.publish(f"{queue}.{index}", b"x", message_id=f"u-{index}")
    async with NatsTransport(url=server.url, prefix="capped", max_queue_bytes=6_000_000) as capped:
        await capped.publish(queue, b"x", message_id="c-1")
        with pytest.raises(
            ConfigurationError, match=r"6000000 bytes of max_bytes.*max_queue_bytes"
        ):
            await capped.publish(f"{queue}.second", b"x", message_id="c-2")
        assert await capped.stats(queue) == QueueStats(1, 0, 0, 0)


async def test_a_server_out_of_storage_refuses_publishes_and_keeps_what_it_has(
    make_server: Callable[..., NatsServer], queue: str
) -> None:
    server = make_server(config="jetstream {\n  max_file_store: 1MB\n}\n")
    async with NatsTransport(url=server.url) as transport:
        stored = 0
        with pytest.raises(PublishRefusedError, match="insufficient resources") as refused:
            for index in range(200):  # 4 MB: more than the server stores
                await transport.publish(queue, b"x" * 20_000, message_id=f"m-{index}")
                stored += 1
        assert refused.value.err_code == 10023 and 0 < stored < 200
        assert await transport.stats(queue) == QueueStats(stored, 0, 0, 0)


async def test_a_duplicate_window_shorter_than_the_lease_is_warned_about(
    nats_url: str, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="paigeant_nats")
    async with NatsTransport(url=nats_url, prefix=prefix, visibility_timeout=60):
        pass
    assert "duplicate_window" not in caplog.text
    short = NatsTransport(url=nats_url, prefix=prefix, visibility_timeout=60, duplicate_window=30)
    async with short:
        pass
    assert "duplicate_window=30.0s is shorter than visibility_timeout=60.0s" in caplog.text


async def test_a_changed_visibility_timeout_updates_the_consumer(
    nats_url: str, prefix: str, raw: Client, queue: str, cleanup_streams: None
) -> None:
    for lease in (1.0, 7.0):
        async with NatsTransport(url=nats_url, prefix=prefix, visibility_timeout=lease) as t:
            await t.publish(queue, b"x", message_id=f"m-{lease}")
            async with Receiver(t, queue) as receiver:
                await (await get(receiver)).ack()
            info = await raw.jsm().consumer_info(t.names.stream(queue), "paigeant")
            assert info.config.ack_wait == lease


# -- headers and ids -------------------------------------------------------------------------


async def test_odd_header_values_and_ids_round_trip_exactly(
    transport: NatsTransport, queue: str
) -> None:
    headers = {
        "x-spaced": "  spaced  ",
        "x-crlf": "a\r\nb",
        "x-unicode": "v é ✓ 日本",
        "x-empty": "",
        "x-json": '{"quoted": "\\"x\\""}',
        "Key With Space": "fine",
        "Nats-Msg-Id": "not the dedup id",
    }
    ids = ["plain-1", "  spaced id  ", '"quoted"', "é-unicode", "line\nbreak"]
    for message_id in ids:
        await transport.publish(queue, b"body", message_id=message_id, headers=headers)
    async with Receiver(transport, queue) as receiver:
        for message_id in ids:
            delivery = await get(receiver)
            assert delivery.message_id == message_id
            assert dict(delivery.headers) == headers
            await delivery.ack()


# -- bad input -------------------------------------------------------------------------------


async def test_foreign_and_damaged_messages_are_dead_lettered_and_the_loop_goes_on(
    transport: NatsTransport, raw: Client, queue: str
) -> None:
    subject = transport.names.subject(queue)
    await transport.publish(queue, b"first", message_id="ok-1")  # creates the stream
    js = raw.jetstream()
    await js.publish(subject, b"from another tool", headers={"origin": "cli"})
    await js.publish(subject, b"damaged", headers={"Paigeant-Id": "d-1", "Paigeant-Headers": "{"})
    await transport.publish(queue, b"second", message_id="ok-2")
    async with Receiver(transport, queue) as receiver:
        for expected in ("ok-1", "ok-2"):
            delivery = await get(receiver)
            assert delivery.message_id == expected
            await delivery.ack()
    async with Receiver(transport, dead_letter_queue(queue)) as dead:
        foreign = await get(dead)
        assert foreign.body == b"from another tool"
        assert foreign.message_id.startswith("nats:")
        assert "no Paigeant-Id header" in foreign.headers[DEAD_LETTER_REASON_HEADER]
        assert foreign.headers["origin"] == "cli"
        assert foreign.headers[DEAD_LETTER_QUEUE_HEADER] == queue
        damaged = await get(dead)
        assert (damaged.message_id, damaged.body) == ("d-1", b"damaged")
        assert "damaged paigeant headers" in damaged.headers[DEAD_LETTER_REASON_HEADER]
        await foreign.ack()
        await damaged.ack()
    assert await transport.stats(queue) == QueueStats(0, 0, 0, 0)


async def test_publish_keeps_room_for_a_dead_letter_and_long_reasons_are_cut(
    transport: NatsTransport, queue: str
) -> None:
    """What publish accepts can always be dead-lettered whole, its own headers kept."""
    limit = transport.connection.max_payload
    with pytest.raises(MessageTooLargeError, match="kept for a dead letter's headers"):
        await transport.publish(queue, b"x" * (limit - 1000), message_id="too-close")
    body = b"y" * (limit - DEAD_LETTER_ROOM - 500)
    headers = await _dead_lettered_whole(transport, queue, body, "why " * 2000)
    reason = headers[DEAD_LETTER_REASON_HEADER]
    assert len(reason) == MAX_REASON_CHARS and reason.startswith("why why")
    assert reason.endswith("\u2026")
    # Non-ASCII reasons take up to 12 bytes a character in the headers: bounded by bytes too.
    headers = await _dead_lettered_whole(transport, queue, body, "\U0001f600" * 2000)
    assert TRUNCATED_FROM_HEADER not in headers
    assert len(json.dumps(headers[DEAD_LETTER_REASON_HEADER])) <= MAX_REASON_BYTES


async def _dead_lettered_whole(
    transport: NatsTransport, queue: str, body: bytes, reason: str
) -> dict[str, str]:
    """Publish ``body`` with a header of its own, dead-letter it with ``reason``; the dead
    letter's headers, once checked that it kept the body, the id and that header."""
    message_id = f"big-{uuid.uuid4().hex[:6]}"
    await transport.publish(queue, body, message_id=message_id, headers={"mine": "kept"})
    async with Receiver(transport, queue) as receiver:
        await (await get(receiver)).dead_letter(reason)
    async with Receiver(transport, dead_letter_queue(queue)) as dead:
        letter = await get(dead)
        assert (letter.message_id, letter.body) == (message_id, body)
        assert letter.headers["mine"] == "kept"
        await letter.ack()
    return dict(letter.headers)


async def test_a_foreign_message_too_large_to_park_whole_is_parked_cut_never_stuck(
    transport: NatsTransport, raw: Client, queue: str
) -> None:
    """Another producer's message near max_payload leaves no room for dead-letter headers:
    its dead letter keeps what fits and says so, instead of a message redelivered forever."""
    await transport.publish(queue, b"first", message_id="first")  # creates the stream
    limit = transport.connection.max_payload
    foreign = bytes(range(256)) * ((limit - 64) // 256)
    await raw.jetstream().publish(transport.names.subject(queue), foreign)
    async with Receiver(transport, queue) as receiver:
        await (await get(receiver)).ack()
        # Waiting for the next delivery drives the loop: it parks the foreign message instead.
        assert await receiver.get(3) is None, "the foreign message was handed out"
    async with Receiver(transport, dead_letter_queue(queue)) as dead:
        letter = await get(dead, 10)
        assert letter.headers[TRUNCATED_FROM_HEADER] == str(len(foreign))
        assert letter.headers[BODY_SHA256_HEADER] == hashlib.sha256(foreign).hexdigest()
        assert "no Paigeant-Id header" in letter.headers[DEAD_LETTER_REASON_HEADER]
        assert limit - 2000 < len(letter.body) < len(foreign)
        assert foreign.startswith(letter.body)
        await letter.ack()
    assert await transport.stats(queue) == QueueStats(0, 0, 0, 0)


async def test_a_delayed_message_too_large_to_deliver_is_parked_not_retried_forever(
    transport: NatsTransport, raw: Client, queue: str
) -> None:
    """Another producer's delayed message exactly at max_payload: delivering it would add a
    header, so it can never reach its queue; it is dead-lettered (cut) instead."""
    await transport.publish(queue, b"warm", message_id="warm", delay=0.05)  # the delay stream
    limit = transport.connection.max_payload
    headers = {"Paigeant-Id": "huge", "Paigeant-Due": "1"}
    body = b"d" * (limit - payload_size(b"", headers))
    await raw.jetstream().publish(transport.names.delay_subject(queue), body, headers=headers)
    async with Receiver(transport, queue) as receiver:
        await (await get(receiver, 10)).ack()  # "warm", promoted as usual
        assert await receiver.get(3) is None, "the huge message was delivered"
    async with Receiver(transport, dead_letter_queue(queue)) as dead:
        letter = await get(dead, 10)
        assert letter.message_id == "huge"
        assert "cannot deliver it" in letter.headers[DEAD_LETTER_REASON_HEADER]
        assert letter.headers[TRUNCATED_FROM_HEADER] == str(len(body))
        await letter.ack()
    assert await transport.stats(queue) == QueueStats(0, 0, 0, 0)


async def test_a_full_queue_refuses_publishes_and_keeps_its_messages(
    nats_url: str, prefix: str, queue: str, cleanup_streams: None
) -> None:
    async with NatsTransport(url=nats_url, prefix=prefix, max_queue_messages=2) as transport:
        await transport.publish(queue, b"1", message_id="full-1")
        await transport.publish(queue, b"2", message_id="full-2")
        with pytest.raises(QueueFullError, match="the queue is full"):
            await transport.publish(queue, b"3", message_id="full-3")
        async with Receiver(transport, queue) as receiver:
            got = [await get(receiver), await get(receiver)]
            assert [d.message_id for d in got] == ["full-1", "full-2"]
            for delivery in got:
                await delivery.ack()


# -- forwards and deduplication --------------------------------------------------------------


async def test_forwards_are_deduplicated_by_id_plain_publishes_are_not(
    transport: NatsTransport, queue: str
) -> None:
    source = f"{queue}-src"
    await transport.publish(source, b"a", message_id="src-1")
    await transport.publish(source, b"b", message_id="src-2")
    async with Receiver(transport, source, prefetch=2) as receiver:
        for delivery in (await get(receiver), await get(receiver)):
            # Both steps forward the same hop (a zombie and the new holder): one arrives.
            await delivery.ack(forward=[Outgoing(queue, b"hop", "hop-1")])
    await transport.publish(queue, b"replayed", message_id="hop-1")  # a replay is kept
    async with Receiver(transport, queue) as receiver:
        first, second = await get(receiver), await get(receiver)
        assert [(first.body, second.body)] == [(b"hop", b"replayed")]
        await first.ack()
        await second.ack()
        assert await receiver.get(timeout=1.0) is None


# -- stats -----------------------------------------------------------------------------------


async def test_stats_count_an_immediate_nack_in_flight_until_redelivered(
    transport: NatsTransport, queue: str
) -> None:
    await transport.publish(queue, b"x", message_id="n-1")
    async with Receiver(transport, queue) as receiver:
        delivery = await get(receiver)
        await delivery.nack()
        # JetStream cannot tell "nacked, awaiting redelivery" from "delivered": in flight.
        assert (await transport.stats(queue)).in_flight == 1
        again = await get(receiver)
        assert again.attempt == 2
        await again.ack()
    assert await transport.stats(queue) == QueueStats(0, 0, 0, 0)


async def test_a_day_long_delay_is_accepted_counted_and_purged_with_its_queue(
    transport: NatsTransport, queue: str
) -> None:
    await transport.publish(queue, b"later", message_id="day-1", delay=86_400)
    async with Receiver(transport, queue) as receiver:
        assert await receiver.get(timeout=0.5) is None
    assert await transport.stats(queue) == QueueStats(0, 0, 1, 0)
    await transport.delete_queue(queue)
    assert await transport.stats(queue) == QueueStats(0, 0, 0, 0)


async def test_delayed_nack_copies_carry_the_attempt_and_the_headers(
    transport: NatsTransport, queue: str
) -> None:
    await transport.publish(queue, b"x", message_id="dn-1", headers={"k": "v"})
    async with Receiver(transport, queue) as receiver:
        first = await get(receiver)
        await first.nack(delay=0.3)
        assert (await transport.stats(queue)).delayed == 1
        second = await get(receiver, 5.0)
        assert (second.message_id, second.attempt, dict(second.headers)) == ("dn-1", 2, {"k": "v"})
        await second.nack(delay=0.1)
        third = await get(receiver, 5.0)
        assert third.attempt == 3
        await third.ack()


# -- deleting a queue under a running consumer -----------------------------------------------


async def test_a_consumer_survives_its_queue_being_deleted_elsewhere(
    transport: NatsTransport, nats_url: str, prefix: str, queue: str, raw: Client
) -> None:
    async with Receiver(transport, queue) as receiver:
        waiting = asyncio.ensure_future(receiver.get(timeout=10))
        await asyncio.sleep(0.3)
        await raw.jsm().delete_stream(transport.names.stream(queue))  # another process
        await asyncio.sleep(0.3)
        async with NatsTransport(url=nats_url, prefix=prefix) as other:
            await other.publish(queue, b"after", message_id="after-delete")
        delivery = await waiting
        assert delivery is not None and delivery.message_id == "after-delete"
        await delivery.ack()


async def test_pull_requests_ask_only_while_the_caller_waits(
    transport: NatsTransport, raw: Client, queue: str
) -> None:
    """A consumer holding a delivery but not asking for more gets nothing more meanwhile."""
    await transport.publish(queue, b"1", message_id="lazy-1")
    async with Receiver(transport, queue) as lazy:
        held = await get(lazy)
        await transport.publish(queue, b"2", message_id="lazy-2")
        info = await raw.jsm().consumer_info(transport.names.stream(queue), "paigeant")
        assert (info.num_pending, info.num_ack_pending, info.num_waiting) == (1, 1, 0)
        await held.ack()
        assert (await get(lazy)).message_id == "lazy-2"


async def test_pub_ack_replies_are_read_without_json_for_the_common_case(
    transport: NatsTransport, raw: Client, queue: str
) -> None:
    """A duplicate PubAck is recognised whatever its spacing (the server writes a space)."""
    await transport.publish(queue, b"x", message_id="dup-1", deduplicate=True)
    reply = await raw.request(
        transport.names.subject(queue), b"x", headers={"Nats-Msg-Id": "dup-1"}
    )
    assert json.loads(reply.data)["duplicate"] is True
    await transport.publish(queue, b"x", message_id="dup-1", deduplicate=True)  # no error
    assert (await transport.stats(queue)).ready == 1


@pytest.mark.no_nats
def test_paigeant_plugins_lists_the_nats_transport() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "paigeant", "plugins"],
        capture_output=True,
        text=True,
        check=False,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stdout.splitlines() if "paigeant-nats" in line)
    assert "nats" in line.replace("paigeant-nats", "") and "0.1.0" in line
