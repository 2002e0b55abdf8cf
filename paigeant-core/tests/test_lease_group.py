"""LeaseGroup: one timer for a worker's running steps, started by a hold and stopped when idle."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from paigeant.transports.base import Delivery, Outgoing
from paigeant.transports.leases import LeaseGroup


class CountingDelivery(Delivery):
    """A delivery that counts its extends."""

    def __init__(self) -> None:
        self.body, self.message_id, self.headers, self.queue, self.attempt = b"", "m", {}, "q", 1
        self.extends = 0

    async def ack(self, *, forward: Sequence[Outgoing] = ()) -> None:
        self._settlement = "ack"

    async def nack(self, *, delay: float = 0.0) -> None:
        self._settlement = "nack"

    async def dead_letter(self, reason: str) -> None:
        self._settlement = "dead_letter"

    async def extend(self) -> None:
        self.extends += 1


async def test_a_held_delivery_is_extended_and_the_timer_stops_once_idle() -> None:
    group = LeaseGroup(lambda: 0.02)
    delivery = CountingDelivery()
    group.hold(delivery, "cid")
    await asyncio.sleep(0.09)
    assert delivery.extends >= 2, "a held delivery was not extended"
    group.release(delivery)
    extends = delivery.extends
    await asyncio.sleep(0.06)
    assert delivery.extends == extends, "a released delivery was still extended"
    assert group._timer is None, "an idle group kept its timer"


async def test_short_holds_arm_no_timer_each() -> None:
    group = LeaseGroup(lambda: 10.0)
    first, second = CountingDelivery(), CountingDelivery()
    group.hold(first)
    timer = group._timer
    group.release(first)
    group.hold(second)
    assert group._timer is timer, "a second hold armed another timer"
    group.release(second)
    assert len(group) == 0
