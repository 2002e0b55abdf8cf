"""Through paigeant itself: a Worker dead-letters bad input with its reason and goes on, and the
dead-letter tools list and redrive on the transport under test."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import pytest

from ..runtime.activity import activity
from ..runtime.context import ActivityContext
from ..runtime.dispatcher import WorkflowDispatcher
from ..runtime.worker import Worker
from ..security.hmac_signer import HmacSigner
from ..store.dead_letters import DeadLetters
from ..transports.base import DEAD_LETTER_REASON_HEADER, QueueStats, Transport
from ..transports.queues import activity_queue, dead_letter_queue
from ..workflow.messages import ActivitySpec
from ..workflow.wire import SIGNATURE_HEADER
from ._receiver import Receiver
from ._suite_base import SuiteBase

__all__ = ["WorkerTests"]

#: PAIGEANT_MAX_MESSAGE_BYTES while a bad-input test runs: a one-step workflow fits, the
#: oversized body does not.
_SIZE_LIMIT = 4000


class WorkerTests(SuiteBase):
    """A Worker and the dead-letter tools on the transport under test."""

    async def publish_foreign(self, transport: Transport, queue: str, body: bytes) -> None:
        """Publish ``body`` to ``queue`` as a producer that is not paigeant would; optional.

        Define it with the broker's own client (no message id, none of paigeant's headers) to
        run the foreign-message test: such a message must be dead-lettered with a reason. The
        queue exists when it is called (a workflow has run through it).
        """
        raise NotImplementedError("publish_foreign is not defined")

    @property
    def has_foreign_publish(self) -> bool:
        """Whether the subclass defines ``publish_foreign``."""
        return type(self).publish_foreign is not WorkerTests.publish_foreign

    async def test_a_worker_dead_letters_bad_input_and_goes_on(
        self, transport: Transport, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Oversized, unsigned and unparsable messages are dead-lettered with their reasons;
        no user code sees them, and the worker then runs a good workflow."""
        monkeypatch.setenv("PAIGEANT_MAX_MESSAGE_BYTES", str(_SIZE_LIMIT))
        signer = HmacSigner("k" * 32, key_id="conformance")
        not_json = b"\x00 not json"
        async with self._worker(transport, signer) as (name, queue, seen):
            await transport.publish(queue, b"{" + b"x" * _SIZE_LIMIT + b"}", message_id="too-big")
            await transport.publish(queue, b'{"not": "signed"}', message_id="unsigned")
            await transport.publish(
                queue,
                not_json,
                message_id="not-json",
                headers={SIGNATURE_HEADER: signer.sign(not_json)},
            )
            reasons = await self._dead_letter_reasons(transport, queue, 3)
            assert "message too large" in reasons["too-big"], reasons
            assert "invalid signature" in reasons["unsigned"], reasons
            assert "malformed message" in reasons["not-json"], reasons
            assert seen == [], "bad input reached user code"
            await self._a_workflow_completes(transport, signer, name, seen)

    async def test_a_worker_dead_letters_a_foreign_message(
        self, transport: Transport, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A message another producer put on a paigeant queue is dead-lettered, with a reason."""
        if not self.has_foreign_publish:
            pytest.skip(
                "publish_foreign is not defined: define `async def publish_foreign(self, "
                "transport, queue, body)` publishing with the broker's own client"
            )
        monkeypatch.setenv("PAIGEANT_MAX_MESSAGE_BYTES", str(_SIZE_LIMIT))
        signer = HmacSigner("k" * 32, key_id="conformance")
        async with self._worker(transport, signer) as (name, queue, seen):
            # A workflow first: the worker is then consuming, so the queue exists on the broker.
            await self._a_workflow_completes(transport, signer, name, seen)
            await self.publish_foreign(transport, queue, b"\x00 from another tool")
            async with Receiver(transport, dead_letter_queue(queue)) as dead:
                parked = await self.get(dead, self.redelivery_timeout, what="the dead letter")
                assert parked.body == b"\x00 from another tool"
                assert parked.message_id, "a dead letter must have an id the tools can name"
                assert parked.headers.get(DEAD_LETTER_REASON_HEADER), parked.headers
                await parked.ack()
            assert len(seen) == 1, "a foreign message reached user code"
            await self._a_workflow_completes(transport, signer, name, seen)

    async def test_dead_letter_tools_list_without_loss_and_redrive(
        self, transport: Transport
    ) -> None:
        """``DeadLetters`` lists a queue's dead letters as often as asked, then redrives them:
        back on their queue as first deliveries, without the dead-letter headers."""
        queue = self.queue()
        ids = sorted(await self.publish(transport, queue, 2))
        async with Receiver(transport, queue, prefetch=2) as receiver:
            for _ in ids:
                await (await self.get(receiver)).dead_letter("for the tools")
        tools = DeadLetters(transport, queue, wait=self.redelivery_timeout)
        for _ in range(3):  # reading never loses a dead letter, browsed or consumed
            listed = await tools.list()
            assert sorted(letter.id for letter in listed) == ids
            assert {letter.reason for letter in listed} == {"for the tools"}
            if self.supports_stats:
                assert (await transport.stats(queue)).dead == 2
        redriven = await tools.redrive()
        assert sorted(letter.id for letter in redriven) == ids
        async with Receiver(transport, queue, prefetch=2) as receiver:
            again = [await self.get(receiver), await self.get(receiver)]
            assert sorted(d.body for d in again) == [b"body-0", b"body-1"]
            assert [d.attempt for d in again] == [1, 1]
            for delivery in again:
                assert DEAD_LETTER_REASON_HEADER not in delivery.headers
                await delivery.ack()
        assert await tools.list() == []
        if self.supports_stats:
            assert await transport.stats(queue) == QueueStats(0, 0, 0, 0)

    # -- helpers -----------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _worker(self, transport: Transport, signer: HmacSigner) -> Any:
        """A Worker serving one fresh activity; yields its name, its queue and the variables of
        every step it ran."""
        name = f"conformance-{uuid.uuid4().hex[:8]}"
        seen: list[Any] = []

        @activity(name)
        async def record(ctx: ActivityContext) -> str:
            seen.append(ctx.variables)
            return "ran"

        worker = Worker(transport, [record], signer=signer, handle_signals=False)
        running = asyncio.ensure_future(worker.run())
        queue = activity_queue(name)
        try:
            await asyncio.wait_for(worker.ready.wait(), 10)
            yield name, queue, seen
        finally:
            worker.stop()
            await running
            for used in (queue, dead_letter_queue(queue)):
                with contextlib.suppress(Exception):
                    await transport.delete_queue(used)

    async def _dead_letter_reasons(
        self, transport: Transport, queue: str, n: int
    ) -> dict[str, str]:
        reasons: dict[str, str] = {}
        async with Receiver(transport, dead_letter_queue(queue), prefetch=n) as dead:
            for _ in range(n):
                parked = await self.get(dead, self.redelivery_timeout, what="a dead letter")
                reasons[parked.message_id] = parked.headers.get(DEAD_LETTER_REASON_HEADER, "")
                await parked.ack()
        return reasons

    async def _a_workflow_completes(
        self, transport: Transport, signer: HmacSigner, name: str, seen: list[Any]
    ) -> None:
        """The worker is (still) serving: a good workflow to its activity completes, once."""
        before = len(seen)
        async with WorkflowDispatcher(transport, signer=signer) as dispatcher:
            cid = await dispatcher.dispatch_workflow([ActivitySpec(name=name)], {"good": before})
            result = await dispatcher.wait_for(cid, timeout=self.redelivery_timeout + 10)
        assert result.status == "completed", result
        assert result.outputs == {name: "ran"}
        assert seen[before:] == [{"good": before}]
