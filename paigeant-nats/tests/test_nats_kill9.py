"""kill -9 of the server: nothing published is lost; resurrected acked messages are swept.

nats-server 2.9 writes a message to its file before the PubAck, so a SIGKILL loses nothing
published. Acks are another matter: a removal reaches the stream's index only every ~2 s, so
acknowledged messages come back after a kill. Those below the consumer's ack floor are never
delivered again but count against the stream's limits until the transport's sweep deletes
them; those above it (consumer state lost) are delivered again, with their message ids. The
test counts both and prints them.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import nats
import pytest

from paigeant.testing import Receiver
from paigeant_nats import NatsTransport

MESSAGES = 400
ACKED = 250


async def _raw_counts(url: str, stream: str) -> tuple[int, int, int]:
    """(messages in the stream, pending for the consumer, leased) seen by a plain client."""

    async def quiet(exc: Exception) -> None:
        pass

    client = await nats.connect(url, error_cb=quiet)
    try:
        manager = client.jsm()
        info = await manager.stream_info(stream)
        consumer = await manager.consumer_info(stream, "paigeant")
        return info.state.messages, consumer.num_pending, consumer.num_ack_pending
    finally:
        await client.close()


@pytest.mark.parametrize("settle_time", [0.0, 1.0], ids=["kill-at-once", "kill-after-1s"])
async def test_kill_9_loses_nothing_published_and_sweeps_resurrected_acks(
    make_server: Any, capsys: pytest.CaptureFixture[str], settle_time: float
) -> None:
    """At once: the consumer's recent acks are lost (redelivered); after 1 s: phantoms."""
    server = make_server()
    queue = "paigeant.kill9"
    lease = 2.0
    options: dict[str, Any] = {
        "url": server.url,
        "visibility_timeout": lease,
        "max_queue_messages": MESSAGES,
    }
    ids = [f"k9-{n}" for n in range(MESSAGES)]
    async with NatsTransport(**options) as transport:
        stream = transport.names.stream(queue)
        for message_id in ids:
            await transport.publish(queue, message_id.encode(), message_id=message_id)
        acked: list[str] = []
        async with Receiver(transport, queue, prefetch=32) as receiver:
            while len(acked) < ACKED:
                delivery = await receiver.get()
                assert delivery is not None
                await delivery.ack()  # confirmed by the server
                acked.append(delivery.message_id)
        await asyncio.sleep(settle_time)  # 1 s: consumer state written, stream index not yet
        server.stop(kill=True)
    server.start()
    stored, pending, leased = await _raw_counts(server.url, stream)
    resurrected = stored - pending - leased  # acked, below the ack floor, still stored

    unacked = set(ids) - set(acked)
    arrived: dict[str, int] = {}
    async with NatsTransport(**options) as transport:
        async with Receiver(transport, queue, prefetch=64) as receiver:
            deadline = time.monotonic() + 30
            while not unacked <= set(arrived) and time.monotonic() < deadline:
                delivery = await receiver.get(timeout=5)
                if delivery is None:
                    break
                arrived[delivery.message_id] = arrived.get(delivery.message_id, 0) + 1
                await delivery.ack()
            # Deliveries the lost consumer state still counts as leased come after their lease.
            while (late := await receiver.get(timeout=lease + 1)) is not None:
                arrived[late.message_id] = arrived.get(late.message_id, 0) + 1
                await late.ack()
        lost = sorted(unacked - set(arrived))
        assert not lost, f"{len(lost)} published, unacknowledged messages lost: {lost[:5]}"
        redelivered_acked = sorted(set(arrived) & set(acked))
        after = await _raw_counts(server.url, stream)
        assert after == (0, 0, 0), f"stream not empty after consuming everything: {after}"
        # The phantoms would have filled the stream (max_queue_messages): it takes a full load.
        for n in range(MESSAGES):
            await transport.publish(queue, b"again", message_id=f"again-{n}")
        await transport.delete_queue(queue)
    with capsys.disabled():
        print(
            f"\nkill -9 of nats-server {settle_time}s after {ACKED} of {MESSAGES} messages were acked: "
            f"0 lost; {resurrected} acked messages resurrected below the ack floor (swept); "
            f"{len(redelivered_acked)} acked messages delivered again"
        )
