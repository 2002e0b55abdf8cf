"""Dead letters through the public Transport API: list without loss, show, redrive."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from paigeant import (
    DEAD_LETTER_QUEUE_HEADER,
    DEAD_LETTER_REASON_HEADER,
    ActivityContext,
    ActivitySpec,
    DeadLetters,
    Worker,
    WorkflowDispatcher,
    activity,
    activity_queue,
    dead_letter_queue,
)
from paigeant.testing import Receiver
from paigeant.transports.inmemory import InMemoryTransport

fixed = {"value": False}


@activity("fragile")
async def fragile(ctx: ActivityContext) -> str:
    if not fixed["value"]:
        raise RuntimeError("not yet")
    return "ok"


async def park(transport: InMemoryTransport, queue: str, n: int) -> list[str]:
    """Put ``n`` messages on ``queue`` and dead-letter each; return their ids."""
    ids = [f"m-{i}" for i in range(n)]
    for message_id in ids:
        await transport.publish(
            queue, message_id.encode(), message_id=message_id, headers={"k": "v"}
        )
    async with Receiver(transport, queue) as receiver:
        for _ in ids:
            delivery = await receiver.get()
            assert delivery is not None
            await delivery.dead_letter(f"bad {delivery.message_id}")
    return ids


async def test_listing_shows_every_dead_letter_and_leaves_the_queue_as_it_was(
    transport: InMemoryTransport,
) -> None:
    queue = activity_queue("listing")
    ids = await park(transport, queue, 5)
    letters = DeadLetters(transport, queue, wait=0.2, idle=0.2)
    for _ in range(transport.max_deliveries + 2):  # listing never raises a delivery count
        listed = await letters.list()
        assert [letter.id for letter in listed] == ids
    first = listed[0]
    assert (first.reason, first.source_queue, first.headers["k"]) == ("bad m-0", queue, "v")
    assert first.body == b"m-0" and first.content() == "m-0"
    stats = await transport.stats(queue)
    assert stats.dead == 5 and stats.in_flight == 0
    assert await letters.get("m-3") is not None and await letters.get("nope") is None
    assert (await transport.stats(dead_letter_queue(queue))).dead == 0, "nothing nested"


async def test_list_respects_the_limit(transport: InMemoryTransport) -> None:
    queue = activity_queue("limited")
    await park(transport, queue, 4)
    letters = DeadLetters(transport, queue, wait=0.2, idle=0.2)
    assert len(await letters.list(limit=2)) == 2
    assert len(await letters.list()) == 4


async def test_redrive_one_republishes_to_the_source_with_a_fresh_attempt(
    transport: InMemoryTransport,
) -> None:
    queue = activity_queue("redriven")
    await park(transport, queue, 3)
    letters = DeadLetters(transport, queue, wait=0.2, idle=0.2)
    (redriven,) = await letters.redrive({"m-1"})
    assert redriven.id == "m-1"
    assert [letter.id for letter in await letters.list()] == ["m-0", "m-2"]
    async with Receiver(transport, queue) as receiver:
        delivery = await receiver.get(timeout=1)
        assert delivery is not None
        assert delivery.body == b"m-1" and delivery.attempt == 1
        assert delivery.message_id.startswith("m-1.redrive-")
        assert delivery.headers == {"k": "v"}, "dead-letter headers were kept"
        await delivery.ack()
    assert await letters.redrive({"absent"}) == []


async def test_redrive_all_then_the_workflow_completes(
    transport: InMemoryTransport, start_worker: Any
) -> None:
    transport.max_deliveries = 2
    transport.visibility_timeout = 0.2
    dispatcher = WorkflowDispatcher(transport)
    cid = await dispatcher.dispatch_workflow([ActivitySpec(name="fragile")])
    queue = activity_queue("fragile")
    for _ in range(3):  # a consumer that dies holding the step, every time
        crashed = Receiver(transport, queue)
        await crashed.get(timeout=2)
        await crashed.close()
    await dead_letters_in(transport, queue, 1)
    letters = DeadLetters(transport, queue, wait=0.2, idle=0.2)
    (letter,) = await letters.list()
    assert letter.correlation_id == cid
    assert "max_deliveries=2" in letter.reason
    fixed["value"] = True
    start_worker(Worker(transport, [fragile]))
    assert [r.id for r in await letters.redrive()] == [letter.id]
    result = await dispatcher.wait_for(cid, timeout=10)
    assert result.status == "completed" and result.output == "ok"
    assert await letters.list() == []
    await dispatcher.close()


async def dead_letters_in(transport: InMemoryTransport, queue: str, n: int) -> None:
    for _ in range(200):
        if (await transport.stats(queue)).dead >= n:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{queue} never had {n} dead letter(s)")


async def test_a_tampered_message_redriven_is_rejected_again(
    transport: InMemoryTransport, start_worker: Any
) -> None:
    fixed["value"] = True
    start_worker(Worker(transport, [fragile]))
    dispatcher = WorkflowDispatcher(transport)
    queue = activity_queue("fragile")
    # intercept the first hop, change its body and send it on: the signature no longer matches
    real = transport.publish

    async def tamper(q: str, body: bytes, **kwargs: Any) -> None:
        if q == queue:
            message = json.loads(body)
            message["routing_slip"]["variables"]["role"] = "admin"
            body = json.dumps(message).encode()
        await real(q, body, **kwargs)

    transport.publish = tamper  # type: ignore[method-assign]
    cid = await dispatcher.dispatch_workflow([ActivitySpec(name="fragile")], obo_token="secret-obo")
    transport.publish = real  # type: ignore[method-assign]
    await dead_letters_in(transport, queue, 1)
    letters = DeadLetters(transport, queue, wait=1.0, idle=0.2)
    (letter,) = await letters.list()
    assert letter.reason.startswith("invalid signature")
    assert letter.correlation_id == cid
    shown = json.dumps(letter.to_dict())
    assert "secret-obo" not in shown and "<redacted>" in shown
    await letters.redrive()
    await dead_letters_in(transport, queue, 1)
    again = await letters.list()
    assert [(x.correlation_id, x.reason.split(":")[0]) for x in again] == [
        (cid, "invalid signature")
    ]
    assert again[0].headers.get(DEAD_LETTER_QUEUE_HEADER) == queue
    assert again[0].headers.get(DEAD_LETTER_REASON_HEADER, "").startswith("invalid signature")
    await dispatcher.close()


async def test_an_empty_dead_letter_queue(transport: InMemoryTransport) -> None:
    letters = DeadLetters(transport, activity_queue("empty"), wait=0.1, idle=0.1)
    assert await letters.list() == []
    assert await letters.redrive() == []
