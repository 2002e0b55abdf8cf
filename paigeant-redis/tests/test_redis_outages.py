"""A Redis that stays down or stops answering: publish and settles fail within publish_timeout."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from paigeant import LeaseLostError, TransportConnectionError
from paigeant.testing import Receiver
from paigeant_redis import DEFAULT_PUBLISH_TIMEOUT, RedisTransport


async def test_publish_to_a_stopped_redis_raises_promptly(private_redis: Any) -> None:
    transport = RedisTransport(url=private_redis.url, publish_timeout=3.0)
    await transport.connect()
    try:
        private_redis.stop()  # stays down
        for delay in (0.0, 5.0):  # XADD, and the delayed-publish script
            started = time.monotonic()
            with pytest.raises(TransportConnectionError, match="cannot publish to 'q'"):
                await transport.publish("q", b"x", message_id="down-1", delay=delay)
            assert time.monotonic() - started < 3.5
    finally:
        await transport.disconnect()


async def test_redis_that_stops_answering_fails_publish_and_ack_after_publish_timeout(
    private_redis: Any,
) -> None:
    transport = RedisTransport(url=private_redis.url, publish_timeout=1.0, visibility_timeout=30)
    await transport.connect()
    await transport.publish("q", b"x", message_id="held-1")
    receiver = Receiver(transport, "q")
    try:
        delivery = await receiver.get()
        assert delivery is not None
        private_redis.pause()  # the connections stay open; nothing replies
        for attempt in (lambda: transport.publish("q", b"y", message_id="hung-1"), delivery.ack):
            started = time.monotonic()
            with pytest.raises(TransportConnectionError, match=r"publish_timeout=1\.0s"):
                await attempt()
            elapsed = time.monotonic() - started
            assert 0.9 <= elapsed < 2.5, f"gave up after {elapsed:.2f}s"
        assert not delivery.settled, "a failed ack must leave the delivery to settle again"
        private_redis.resume()
        await delivery.ack()  # now it goes through
    finally:
        private_redis.resume()
        await receiver.close()
        await transport.disconnect()


async def test_extend_while_redis_is_down_logs_and_after_disconnect_raises(
    private_redis: Any, caplog: pytest.LogCaptureFixture
) -> None:
    transport = RedisTransport(url=private_redis.url, publish_timeout=2.0, visibility_timeout=30)
    await transport.connect()
    await transport.publish("q", b"x", message_id="beat-1")
    receiver = Receiver(transport, "q")
    try:
        delivery = await receiver.get()
        assert delivery is not None
        private_redis.stop()  # unreachable, not disconnected: a heartbeat is best effort
        with caplog.at_level(logging.WARNING, logger="paigeant_redis.delivery"):
            started = time.monotonic()
            await delivery.extend()
        assert time.monotonic() - started < 2.5
        assert "could not extend the lease of message beat-1 on q" in caplog.text
        assert not delivery.settled
    finally:
        await transport.disconnect()  # cannot release the entry: Redis is down
        await receiver.close()
    with pytest.raises(
        LeaseLostError,
        match="the transport disconnected; the message is redelivered once visibility_timeout",
    ):
        await delivery.extend()


@pytest.mark.no_redis
def test_publish_timeout_default_and_validation() -> None:
    assert DEFAULT_PUBLISH_TIMEOUT == 10.0
    assert RedisTransport().publish_timeout == DEFAULT_PUBLISH_TIMEOUT
    assert RedisTransport(publish_timeout=2.5).publish_timeout == 2.5
    with pytest.raises(ValueError, match="publish_timeout"):
        RedisTransport(publish_timeout=0)
