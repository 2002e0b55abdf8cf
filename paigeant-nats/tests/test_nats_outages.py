"""Connecting, outages and size limits: bounded failures with clear errors, nothing lost.

Every test here runs against a private nats-server of its own (``make_server``), except the
size-limit test, which needs the shared server's default ``max_payload`` (1 MiB).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
import uuid
from typing import Any

import pytest
from nats.aio.client import Client

from paigeant import (
    ConfigurationError,
    MessageTooLargeError,
    TransportConnectionError,
)
from paigeant.settings import DEFAULT_MAX_MESSAGE_BYTES
from paigeant.testing import Receiver
from paigeant_nats import NatsTransport

from .conftest import BIG_PAYLOAD, free_port


async def test_a_wrong_url_fails_connect_within_a_bounded_time_without_credentials() -> None:
    port = free_port()  # nothing listens there
    transport = NatsTransport(
        url=f"nats://alice:s3cret@127.0.0.1:{port}", connect_timeout=0.5, connect_attempts=2
    )
    started = time.monotonic()
    with pytest.raises(TransportConnectionError) as failed:
        await transport.connect()
    elapsed = time.monotonic() - started
    assert elapsed < 5, f"connect() took {elapsed:.1f}s to fail"
    message = str(failed.value)
    assert f"127.0.0.1:{port}" in message and "PAIGEANT_NATS_URL" in message
    assert "s3cret" not in message and "alice" not in message


@pytest.mark.parametrize("attempts", [1, 2, 3])
async def test_a_refused_port_fails_connect_after_exactly_its_attempts(
    attempts: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    tries = 0
    real = Client._connect_to_server

    async def counting(self: Client, *args: Any, **kwargs: Any) -> Any:
        nonlocal tries
        tries += 1
        return await real(self, *args, **kwargs)

    monkeypatch.setattr(Client, "_connect_to_server", counting)
    transport = NatsTransport(
        url=f"nats://127.0.0.1:{free_port()}", connect_timeout=0.5, connect_attempts=attempts
    )
    with pytest.raises(TransportConnectionError):
        await transport.connect()
    assert tries == attempts


@pytest.mark.parametrize("attempts", [1, 3])
async def test_a_peer_that_never_speaks_fails_connect_after_exactly_its_attempts(
    attempts: int,
) -> None:
    accepted: list[socket.socket] = []
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        silent.settimeout(0.1)
        port = silent.getsockname()[1]
        done = threading.Event()

        def accept() -> None:  # accepts TCP, never sends INFO; counts the connections
            while not done.is_set():
                with contextlib.suppress(TimeoutError):
                    accepted.append(silent.accept()[0])

        counting = threading.Thread(target=accept)
        counting.start()
        transport = NatsTransport(
            url=f"nats://127.0.0.1:{port}", connect_timeout=0.5, connect_attempts=attempts
        )
        started = time.monotonic()
        try:
            with pytest.raises(TransportConnectionError, match=f"127.0.0.1:{port}"):
                await transport.connect()
            elapsed = time.monotonic() - started
        finally:
            done.set()
            counting.join()
            for connection in accepted:
                connection.close()
    assert len(accepted) == attempts
    assert elapsed < attempts * (0.5 + 0.5) + 1.5, f"connect() took {elapsed:.1f}s to fail"


async def test_a_server_without_jetstream_is_a_clear_configuration_error(make_server: Any) -> None:
    server = make_server(jetstream=False)
    with pytest.raises(ConfigurationError, match="JetStream is not enabled"):
        await NatsTransport(url=server.url).connect()


async def test_publish_and_ack_while_the_server_is_down_raise_within_publish_timeout(
    make_server: Any,
) -> None:
    server = make_server()
    transport = NatsTransport(url=server.url, publish_timeout=1.5, visibility_timeout=30)
    await transport.connect()
    await transport.publish("q", b"held", message_id="held-1")
    receiver = Receiver(transport, "q")
    try:
        delivery = await receiver.get()
        assert delivery is not None
        server.stop()  # stays down
        attempts = {
            "publish": lambda: transport.publish("q", b"x", message_id="down-1"),
            "delayed publish": lambda: transport.publish("q", b"x", message_id="down-2", delay=5),
            "ack": delivery.ack,
        }
        for what, attempt in attempts.items():
            started = time.monotonic()
            with pytest.raises(TransportConnectionError):
                await attempt()
            elapsed = time.monotonic() - started
            assert elapsed < 2.5, f"{what} took {elapsed:.2f}s to fail"
        assert not delivery.settled, "a failed ack must leave the delivery to settle again"
        server.start()  # same store: the message and the consumer's state come back
        deadline = time.monotonic() + 10
        while True:
            try:
                await delivery.ack()
                break
            except TransportConnectionError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        assert delivery.settled
    finally:
        await receiver.close()
        await transport.disconnect()


async def test_an_oversized_publish_is_refused_and_the_connection_stays_usable(
    nats_url: str, prefix: str, cleanup_streams: None
) -> None:
    queue = f"big-{uuid.uuid4().hex[:8]}"
    async with NatsTransport(url=nats_url, prefix=prefix) as transport:
        limit = transport.connection.max_payload
        with pytest.raises(MessageTooLargeError, match="max_payload") as refused:
            await transport.publish(queue, b"x" * limit, message_id="too-big")
        assert "PAIGEANT_MAX_MESSAGE_BYTES" in str(refused.value)
        with pytest.raises(MessageTooLargeError):  # headers count too
            await transport.publish(queue, b"x" * (limit - 20), message_id="big-with-headers")
        await transport.publish(queue, b"fine", message_id="after")
        async with Receiver(transport, queue) as receiver:
            delivery = await receiver.get()
            assert delivery is not None and delivery.message_id == "after"
            await delivery.ack()
        assert transport.connection.is_connected


async def test_a_one_mebibyte_paigeant_message_passes_when_max_payload_is_raised(
    make_server: Any,
) -> None:
    server = make_server(config=BIG_PAYLOAD)
    body = b"{" + b"x" * (DEFAULT_MAX_MESSAGE_BYTES - 2) + b"}"
    headers = {
        "paigeant-correlation-id": str(uuid.uuid4()),
        "paigeant-signature": "eyJhbGciOiJIUzI1NiJ9.." + "s" * 43,
        "traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01",
    }
    async with NatsTransport(url=server.url) as transport:
        assert transport.connection.max_payload == 8 * 1024 * 1024
        await transport.publish("paigeant.big", body, message_id="mib-0", headers=headers)
        async with Receiver(transport, "paigeant.big") as receiver:
            delivery = await receiver.get()
            assert delivery is not None
            assert (delivery.body, dict(delivery.headers)) == (body, headers)
            await delivery.ack(forward=[])


async def test_a_client_closed_under_the_transport_is_replaced_and_loops_move_on(
    nats_url: str, prefix: str, cleanup_streams: None
) -> None:
    """nats-py closes its client for good on some protocol errors: a new one takes over."""
    queue = f"reopen-{uuid.uuid4().hex[:8]}"
    transport = NatsTransport(url=nats_url, prefix=prefix)
    async with transport, Receiver(transport, queue) as receiver:
        await transport.publish(queue, b"before", message_id="before")
        first = await receiver.get()
        assert first is not None
        await first.ack()
        old = transport.connection
        await old.client.close()  # as nats-py does after a fatal -ERR
        deadline = time.monotonic() + 10
        while transport.connection is old and time.monotonic() < deadline:  # noqa: ASYNC110 - polling the transport's state
            await asyncio.sleep(0.05)
        assert transport.connection is not old, "no new connection was opened"
        await transport.publish(queue, b"after", message_id="after")
        second = await receiver.get(timeout=10)
        assert second is not None and second.message_id == "after"
        await second.ack()
