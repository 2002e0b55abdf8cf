"""Conformance tests of ``Transport.browse()`` (optional): a look at a queue that takes nothing."""

from __future__ import annotations

import pytest

from ..transports.base import DEAD_LETTER_REASON_HEADER, Transport
from ..transports.queues import dead_letter_queue
from ._receiver import Receiver
from ._suite_base import SuiteBase

__all__ = ["BrowseTests"]


class BrowseTests(SuiteBase):
    """browse(queue) lists ready and in-flight messages oldest first and moves nothing."""

    async def test_browse_shows_messages_oldest_first_and_takes_nothing(
        self, transport: Transport
    ) -> None:
        queue = self.queue()
        if not self.supports_browse:
            with pytest.raises(NotImplementedError):
                await transport.browse(queue)
            pytest.skip(
                "supports_browse = False (browse is optional): it raises NotImplementedError "
                "as it must; implement Transport.browse(queue, limit=) and set "
                "supports_browse = True to run the rest"
            )
        assert await transport.browse(queue) == [], "an empty queue shows messages"
        ids = await self.publish(transport, queue, 3, headers={"k": "v"})
        if self.supports_delay:
            await transport.publish(queue, b"later", message_id="browse-later", delay=60.0)
        for _ in range(self.max_deliveries + 1):  # browsing never counts as a delivery
            seen = await transport.browse(queue)
            assert [m.message_id for m in seen] == ids, "not the ready messages, oldest first"
        assert [m.body for m in seen] == [b"body-0", b"body-1", b"body-2"]
        assert all(m.queue == queue and m.headers.get("k") == "v" for m in seen)
        assert [m.message_id for m in await transport.browse(queue, limit=2)] == ids[:2]
        async with Receiver(transport, queue, prefetch=1) as receiver:
            first = await self.get(receiver)
            assert (first.message_id, first.attempt) == (ids[0], 1), "browsing took a delivery"
            in_flight = [m.message_id for m in await transport.browse(queue)]
            assert in_flight == ids, "a message in flight is not shown"
            await first.dead_letter("browsed")
            assert [m.message_id for m in await transport.browse(queue)] == ids[1:]
            (dead,) = await transport.browse(dead_letter_queue(queue))
            assert (dead.message_id, dead.body) == (ids[0], b"body-0")
            assert dead.headers.get(DEAD_LETTER_REASON_HEADER) == "browsed"
            second = await self.get(receiver)
            assert (second.message_id, second.attempt) == (ids[1], 1)
            await second.ack()
        assert [m.message_id for m in await transport.browse(queue)] == ids[2:]
