"""Conformance tests of settling: nack, leases, extend, dead letters, forwards."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta

import pytest

from ..errors import LeaseLostError
from ..transports.base import (
    DEAD_LETTER_ATTEMPT_HEADER,
    DEAD_LETTER_QUEUE_HEADER,
    DEAD_LETTER_REASON_HEADER,
    DEAD_LETTER_TIME_HEADER,
    Delivery,
    Outgoing,
    Transport,
)
from ..transports.queues import dead_letter_queue
from ._receiver import Receiver
from ._suite_base import SuiteBase

__all__ = ["SettlementTests"]


class SettlementTests(SuiteBase):
    """Nack, leases, extend, dead letters, poison protection, settling once, broker attempts."""

    # -- settlement ------------------------------------------------------------------------

    async def test_nack_redelivers_with_next_attempt(self, transport: Transport) -> None:
        queue = self.queue()
        (message_id,) = await self.publish(transport, queue)
        async with Receiver(transport, queue) as receiver:
            first = await receiver.get()
            assert first is not None and first.attempt == 1
            await first.nack()
            second = await receiver.get(timeout=self.redelivery_timeout)
            assert second is not None
            assert (second.message_id, second.attempt, second.body) == (message_id, 2, first.body)
            await second.ack()

    async def test_nack_with_delay_waits(self, transport: Transport) -> None:
        self.require_delays()
        queue = self.queue()
        await self.publish(transport, queue)
        async with Receiver(transport, queue) as receiver:
            first = await receiver.get()
            assert first is not None
            nacked_at = time.monotonic()
            await first.nack(delay=1.0)
            second = await receiver.get(timeout=1.0 + self.redelivery_grace)
            assert second is not None and second.attempt == 2
            assert time.monotonic() - nacked_at >= 0.9
            await second.ack()

    async def test_consumer_that_stops_without_settling_gets_it_redelivered(
        self, transport: Transport
    ) -> None:
        queue = self.queue()
        (message_id,) = await self.publish(transport, queue, headers={"x-k": "v"})
        crashed = Receiver(transport, queue)
        first = await crashed.get()
        assert first is not None and first.attempt == 1
        await crashed.close()  # the consumer dies holding the delivery
        async with Receiver(transport, queue) as receiver:
            second = await receiver.get(timeout=self.redelivery_timeout)
            assert second is not None
            assert second.message_id == message_id
            assert second.attempt == 2
            assert second.headers["x-k"] == "v"
            await second.ack()

    async def test_a_closed_consume_loop_keeps_the_leases_it_handed_out(
        self, transport: Transport
    ) -> None:
        """A worker that stopped consuming drains its steps: heartbeats keep them, no duplicate."""
        queue = self.queue()
        (message_id,) = await self.publish(transport, queue)
        draining = Receiver(transport, queue, prefetch=1)
        held = await self.get(draining)
        await draining.close()  # stopped consuming; the step still runs
        async with Receiver(transport, queue) as other:
            heartbeat = self.visibility_timeout / 3
            for _ in range(6):  # twice the visibility timeout
                await held.extend()
                extra = await other.get(timeout=heartbeat)
                assert extra is None, (
                    f"{message_id} was redelivered while its holder was still extending it "
                    "after its consume() loop closed"
                )
            await held.ack()
            extra = await other.get(timeout=self.quiet_period)
            assert extra is None, f"an acked message came back: {extra and extra.message_id}"

    async def test_lease_expiry_redelivers_to_another_consumer(self, transport: Transport) -> None:
        queue = self.queue()
        await self.publish(transport, queue)
        async with Receiver(transport, queue) as slow, Receiver(transport, queue) as other:
            held = await slow.get()
            assert held is not None
            again = await other.get(timeout=self.redelivery_timeout)
            assert again is not None and again.attempt == 2
            await again.ack()

    async def test_extend_keeps_the_lease(self, transport: Transport) -> None:
        queue = self.queue()
        await self.publish(transport, queue)
        async with Receiver(transport, queue) as worker:
            held = await worker.get()
            assert held is not None
            other = Receiver(transport, queue)
            probe = asyncio.ensure_future(other.get(timeout=self.visibility_timeout * 3))
            deadline = time.monotonic() + self.visibility_timeout * 2.5
            while time.monotonic() < deadline:
                await held.extend()
                await asyncio.sleep(self.visibility_timeout / 4)
            await held.ack()
            stolen = await probe
            await other.close()
            assert stolen is None, "an extended lease was redelivered to another consumer"

    async def test_dead_letter_parks_message_with_reason(self, transport: Transport) -> None:
        queue = self.queue()
        (message_id,) = await self.publish(transport, queue, headers={"x-k": "v"})
        async with Receiver(transport, queue) as receiver:
            delivery = await receiver.get()
            assert delivery is not None
            await delivery.dead_letter("cannot parse body")
            assert await receiver.get(timeout=self.visibility_timeout * 2 + 0.5) is None
        async with Receiver(transport, dead_letter_queue(queue)) as dead:
            parked = await dead.get()
            assert parked is not None
            assert parked.message_id == message_id
            assert parked.body == b"body-0"
            assert parked.headers["x-k"] == "v"
            assert_dead_letter_headers(parked, queue, attempt=1, reason="cannot parse body")
            await parked.ack()

    async def test_max_deliveries_dead_letters_after_nacks(self, transport: Transport) -> None:
        queue = self.queue()
        (message_id,) = await self.publish(transport, queue)
        attempts: list[int] = []
        async with Receiver(transport, queue) as receiver:
            for _ in range(self.max_deliveries + 1):
                delivery = await receiver.get(timeout=self._next_wait(attempts))
                if delivery is None:
                    break
                attempts.append(delivery.attempt)
                await delivery.nack()
        assert attempts == list(range(1, self.max_deliveries + 1))
        await self._assert_dead_lettered(transport, queue, message_id)

    async def test_max_deliveries_dead_letters_a_message_that_crashes_its_consumer(
        self, transport: Transport
    ) -> None:
        queue = self.queue()
        (message_id,) = await self.publish(transport, queue)
        attempts: list[int] = []
        for _ in range(self.max_deliveries + 1):
            receiver = Receiver(transport, queue)
            delivery = await receiver.get(timeout=self._next_wait(attempts))
            if delivery is None:
                break
            attempts.append(delivery.attempt)
            await receiver.close()  # dies without settling, every time
        assert attempts == list(range(1, self.max_deliveries + 1))
        await self._assert_dead_lettered(transport, queue, message_id)

    def _next_wait(self, attempts: list[int]) -> float:
        """Wait long for an expected redelivery, briefly for one that must not come."""
        if len(attempts) < self.max_deliveries:
            return self.redelivery_timeout
        return self.visibility_timeout + 0.5

    async def _assert_dead_lettered(
        self, transport: Transport, queue: str, message_id: str
    ) -> None:
        async with Receiver(transport, dead_letter_queue(queue)) as dead:
            parked = await dead.get(timeout=self.redelivery_timeout)
            assert parked is not None, "message past max_deliveries was not dead-lettered"
            assert parked.message_id == message_id
            assert parked.body == b"body-0"
            assert_dead_letter_headers(parked, queue, attempt=self.max_deliveries)
            await parked.ack()

    # -- settling once ---------------------------------------------------------------------

    async def test_a_second_settle_is_a_logged_no_op(
        self, transport: Transport, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Every (first, second) pair of ack, nack and dead_letter: the first one holds."""
        caplog.set_level(logging.DEBUG)
        queue = self.queue()
        plans = [(first, second) for first in _SETTLES for second in _SETTLES]
        ids = await self.publish(transport, queue, len(plans))
        plan = dict(zip(ids, plans, strict=True))
        nacked = {mid for mid, (first, _) in plan.items() if first == "nack"}
        dead_lettered = {mid for mid, (first, _) in plan.items() if first == "dead_letter"}
        async with Receiver(transport, queue, prefetch=len(plans)) as receiver:
            held = {}
            for _ in plans:
                delivery = await self.get(receiver)
                held[delivery.message_id] = delivery
            for message_id, (first, second) in plan.items():
                await _settle(held[message_id], first, reason="the first settle")
                caplog.clear()
                await _settle(held[message_id], second, reason="the second settle")  # no error
                self.assert_logged(caplog, message_id, f"a second settle ({first}, then {second})")
            back = {}
            for _ in nacked:
                again = await self.get(receiver, self.redelivery_timeout, what="a nacked message")
                assert again.message_id not in back, f"{again.message_id} came back twice"
                back[again.message_id] = again.attempt
                await again.ack()
            assert back == dict.fromkeys(nacked, 2), "the first settle (nack) did not hold"
            extra = await receiver.get(timeout=self.quiet_period)
            assert extra is None, f"a second settle redelivered {extra and extra.message_id}"
        async with Receiver(transport, dead_letter_queue(queue)) as dead:
            parked = {}
            for _ in dead_lettered:
                letter = await self.get(dead, what="a dead letter")
                assert letter.message_id not in parked, f"{letter.message_id} parked twice"
                parked[letter.message_id] = letter.headers.get(DEAD_LETTER_REASON_HEADER)
                await letter.ack()
            assert parked == dict.fromkeys(dead_lettered, "the first settle"), (
                "the first settle (dead_letter) did not hold"
            )
            extra = await dead.get(timeout=1.0)
            assert extra is None, f"a second settle dead-lettered {extra and extra.message_id}"

    async def test_racing_settles_take_effect_once(self, transport: Transport) -> None:
        """Two settles of one delivery at once: no error, exactly one outcome, nothing lost."""
        queue = self.queue()
        races = [(a, b) for a in _SETTLES for b in _SETTLES if a != b]
        ids = await self.publish(transport, queue, len(races))
        race = dict(zip(ids, races, strict=True))
        async with Receiver(transport, queue, prefetch=len(races)) as receiver:
            held = [await self.get(receiver) for _ in races]
            await asyncio.gather(  # any error of either settle fails the test
                *(
                    _settle(delivery, how, reason=f"race {how}")
                    for delivery in held
                    for how in race[delivery.message_id]
                )
            )
            back: dict[str, list[int]] = {}
            while (again := await receiver.get(timeout=self.quiet_period)) is not None:
                back.setdefault(again.message_id, []).append(again.attempt)
                await again.ack()
        async with Receiver(transport, dead_letter_queue(queue)) as dead:
            parked: dict[str, list[str | None]] = {}
            while (letter := await dead.get(timeout=self.quiet_period)) is not None:
                reason = letter.headers.get(DEAD_LETTER_REASON_HEADER)
                parked.setdefault(letter.message_id, []).append(reason)
                await letter.ack()
        outcomes = {  # (attempts redelivered, dead-letter reasons) each settle leads to
            "ack": ([], []),
            "nack": ([2], []),
            "dead_letter": ([], ["race dead_letter"]),
        }
        for message_id, (a, b) in race.items():
            seen = (back.get(message_id, []), parked.get(message_id, []))
            assert seen in (outcomes[a], outcomes[b]), (
                f"{a} racing {b}: redelivered with attempts {seen[0]} and dead-lettered "
                f"{len(seen[1])} time(s) ({seen[1]}), which is not exactly one of their outcomes"
            )

    # -- after the lease was lost ------------------------------------------------------------

    async def test_settling_after_the_lease_was_lost(self, transport: Transport) -> None:
        """A late ack still forwards; a late nack or dead_letter leaves the new holder alone."""
        source, target = self.queue(), self.queue()
        late_ack, late_nack, late_dead = await self.publish(transport, source, 3)
        async with Receiver(transport, source, prefetch=3) as slow:
            lost = {}
            for _ in range(3):
                delivery = await self.get(slow)
                lost[delivery.message_id] = delivery
            async with Receiver(transport, source, prefetch=3) as other:
                holder = {}
                for _ in range(3):
                    delivery = await self.get(
                        other, self.redelivery_timeout, what="a redelivery after the lease ran out"
                    )
                    assert delivery.attempt == 2
                    holder[delivery.message_id] = delivery
                for delivery in lost.values():
                    with pytest.raises(LeaseLostError):
                        await delivery.extend()
                await lost[late_nack].nack()  # must not requeue over the new holder
                await lost[late_dead].dead_letter("too late")  # must not take it from the holder
                for message_id in (late_nack, late_dead):
                    try:
                        await holder[message_id].extend()
                    except LeaseLostError:
                        pytest.fail(f"a late settle of {message_id} took the new holder's lease")
                await lost[late_ack].ack(forward=[Outgoing(target, b"late", "late-forward")])
                for delivery in holder.values():
                    await delivery.ack()  # the new holder still settles its copy
                extra = await other.get(timeout=self.quiet_period)
                assert extra is None, f"a late settle requeued {extra and extra.message_id}"
        async with Receiver(transport, target) as forwarded:
            got = await self.get(forwarded, what="the forward of an ack after the lease was lost")
            assert (got.message_id, got.body) == ("late-forward", b"late")
            await got.ack()
        async with Receiver(transport, dead_letter_queue(source)) as dead:
            parked = await dead.get(timeout=1.0)
            assert parked is None, (
                f"a late dead_letter dead-lettered {parked and parked.message_id}"
            )

    # -- attempts are counted by the broker --------------------------------------------------

    async def test_attempt_counts_across_a_delayed_nack_and_a_vanished_consumer(
        self, transport: Transport
    ) -> None:
        self.require_delays()
        queue = self.queue()
        (message_id,) = await self.publish(transport, queue)
        async with Receiver(transport, queue) as receiver:
            first = await self.get(receiver)
            assert first.attempt == 1
            await first.nack(delay=0.2)
            second = await self.get(receiver, 0.2 + self.redelivery_grace, what="the nacked one")
            assert second.attempt == 2
        # that consumer went away holding `second`
        async with Receiver(transport, queue) as receiver:
            third = await self.get(receiver, self.redelivery_timeout, what="the abandoned one")
            assert (third.message_id, third.attempt) == (message_id, 3)
            await third.ack()

    async def test_attempt_survives_a_new_transport_instance(self, transport: Transport) -> None:
        queue = self.queue()
        (message_id,) = await self.publish(transport, queue)
        first_process = await self.fresh_transport()
        receiver = Receiver(first_process, queue)
        held = await self.get(receiver)
        assert held.attempt == 1
        await first_process.disconnect()  # the process ends holding the delivery
        await receiver.close()
        second_process = await self.fresh_transport()
        async with Receiver(second_process, queue) as receiver:
            again = await self.get(receiver, self.redelivery_timeout, what="the redelivery")
            assert (again.message_id, again.attempt) == (message_id, 2)
            await again.nack(delay=0.2 if self.supports_delay else 0.0)
        third_process = await self.fresh_transport()
        async with Receiver(third_process, queue) as receiver:
            last = await self.get(receiver, 0.2 + self.redelivery_timeout, what="the nacked one")
            assert (last.message_id, last.attempt) == (message_id, 3)
            await last.ack()


#: The three ways of settling a delivery.
_SETTLES = ("ack", "nack", "dead_letter")


async def _settle(delivery: Delivery, how: str, *, reason: str) -> None:
    """Settle ``delivery`` by ``how`` (one of ``_SETTLES``); ``reason`` for a dead letter."""
    if how == "ack":
        await delivery.ack()
    elif how == "nack":
        await delivery.nack()
    else:
        await delivery.dead_letter(reason)


def assert_dead_letter_headers(
    parked: Delivery, queue: str, *, attempt: int, reason: str | None = None
) -> None:
    """Assert a dead letter carries its reason, source queue, attempt and UTC time."""
    headers = parked.headers
    assert headers.get(DEAD_LETTER_REASON_HEADER), "a dead letter lacks its reason header"
    if reason is not None:
        assert headers[DEAD_LETTER_REASON_HEADER] == reason
    assert headers.get(DEAD_LETTER_QUEUE_HEADER) == queue, "wrong or missing source queue header"
    assert headers.get(DEAD_LETTER_ATTEMPT_HEADER) == str(attempt), "wrong or missing attempt"
    stamp = headers.get(DEAD_LETTER_TIME_HEADER, "")
    try:
        when = datetime.fromisoformat(stamp)
    except ValueError:
        pytest.fail(f"dead-letter time header {stamp!r} is not ISO 8601")
    assert when.utcoffset() == timedelta(0), f"dead-letter time {stamp!r} is not in UTC"
    assert abs(datetime.now(UTC) - when) < timedelta(minutes=5), f"dead-letter time {stamp!r}"
