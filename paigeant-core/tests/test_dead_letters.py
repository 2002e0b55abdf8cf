"""Dead letters through the public Transport API: list without loss, show, redrive."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import pytest

from paigeant import (
    DEAD_LETTER_QUEUE_HEADER,
    DEAD_LETTER_REASON_HEADER,
    ActivityContext,
    ActivitySpec,
    DeadLetter,
    DeadLetters,
    Outgoing,
    Worker,
    WorkflowDispatcher,
    activity,
    activity_queue,
    dead_letter_queue,
)
from paigeant.testing import Receiver
from paigeant.transports import inmemory
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
        assert delivery.message_id == "m-1.redrive-1"
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


class NoBrowse(InMemoryTransport):
    """A transport that cannot look at a queue without taking its messages."""

    async def browse(self, queue: str, *, limit: int = 100) -> Any:
        raise NotImplementedError("no browse here")


@pytest.fixture(params=["browse", "consume"])
async def either(request: pytest.FixtureRequest) -> Any:
    """A transport that browses, and one that does not (dead letters read by consuming)."""
    kind = NoBrowse if request.param == "consume" else InMemoryTransport
    async with kind() as connected:
        yield connected


async def test_a_limited_list_shows_the_oldest_every_time_and_keeps_the_order(
    either: InMemoryTransport,
) -> None:
    queue = activity_queue("rotating")
    ids = await park(either, queue, 5)
    letters = DeadLetters(either, queue, wait=0.2, idle=0.2)
    assert [x.id for x in await letters.list(limit=2)] == ids[:2]
    assert [x.id for x in await letters.list(limit=2)] == ids[:2], "list(limit) rotated them"
    assert [x.id for x in await letters.list()] == ids, "listing changed the order"
    assert (await either.stats(queue)).dead == 5


async def test_concurrent_lists_see_the_same_letters_and_a_redrive_meanwhile_finds_its_own(
    transport: InMemoryTransport,
) -> None:
    queue = activity_queue("concurrent")
    ids = await park(transport, queue, 5)
    readers = [DeadLetters(transport, queue, wait=0.5, idle=0.3) for _ in range(3)]
    listing = asyncio.gather(*(reader.list() for reader in readers))
    redriven = await DeadLetters(transport, queue, wait=0.3, idle=0.3).redrive({ids[0]})
    assert [x.id for x in redriven] == [ids[0]], "the redrive missed a letter being listed"
    for got in await listing:
        assert [x.id for x in got] in (ids, ids[1:])
    lists = await asyncio.gather(*(reader.list() for reader in readers))
    assert all([x.id for x in got] == ids[1:] for got in lists)


async def test_the_redrive_id_is_deterministic_per_dead_letter(
    transport: InMemoryTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = activity_queue("again")
    await park(transport, queue, 1)
    letters = DeadLetters(transport, queue, wait=0.2, idle=0.2)
    original = inmemory._InMemoryDelivery.ack
    crashed: list[str] = []

    async def forward_then_crash(
        self: inmemory._InMemoryDelivery, *, forward: Sequence[Outgoing] = ()
    ) -> None:
        if forward and not crashed:  # the redrive is published, then the process dies
            for out in forward:
                await transport.publish(out.queue, out.body, message_id=out.message_id)
            crashed.append(self.message_id)
            raise ConnectionError("killed between publish and ack")
        await original(self, forward=forward)

    monkeypatch.setattr(inmemory._InMemoryDelivery, "ack", forward_then_crash)
    with pytest.raises(ConnectionError):
        await letters.redrive()
    assert [x.id for x in await letters.list()] == ["m-0"], "the dead letter was lost"
    assert [x.id for x in await letters.redrive()] == ["m-0"]  # the operator runs it again
    async with Receiver(transport, queue) as receiver:
        sent = [await receiver.get(timeout=1), await receiver.get(timeout=1)]
        assert [d.message_id for d in sent if d] == ["m-0.redrive-1", "m-0.redrive-1"]
        (again := sent[1]) and await again.dead_letter("still broken")
        assert sent[0] is not None
        await sent[0].ack()
    (letter,) = await letters.list()
    assert (letter.id, letter.redrive_id) == ("m-0.redrive-1", "m-0.redrive-2")


def test_shown_bodies_hide_tokens_unless_raw() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbm4ifQ.c2lnbmF0dXJl"
    detached = "eyJhbGciOiJIUzI1NiIsImtpZCI6ImsifQ..c2lnbmF0dXJl"  # a message signature: kept

    def letter(body: bytes, **headers: str) -> DeadLetter:
        return DeadLetter(
            id="m",
            queue="q.dead-letter",
            source_queue="q",
            reason="r",
            attempt=1,
            dead_lettered_at=None,
            correlation_id="c",
            headers=headers,
            body=body,
        )

    as_json = letter(
        json.dumps(
            {"obo_token": "opaque-secret", "routing_slip": {"note": f"Bearer {jwt}"}}
        ).encode(),
        authorization=f"Bearer {jwt}",
        **{"paigeant-signature": detached},
    )
    shown = json.dumps(as_json.to_dict())
    assert "opaque-secret" not in shown and jwt not in shown
    assert as_json.content() == {
        "obo_token": "<redacted>",
        "routing_slip": {"note": "Bearer <redacted>"},
    }
    assert as_json.to_dict()["headers"] == {
        "authorization": "Bearer <redacted>",
        "paigeant-signature": detached,
    }
    torn = letter(b'{"obo_token": "opaque-secret", "routing_slip": {"x": "' + jwt.encode() + b'", ')
    assert torn.content() == '{"obo_token": "<redacted>", "routing_slip": {"x": "<redacted>", '
    assert "opaque-secret" in json.dumps(as_json.to_dict(raw=True))
    assert torn.content(raw=True) == torn.body.decode()
