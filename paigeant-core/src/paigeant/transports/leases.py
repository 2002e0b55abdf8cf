"""Keeping leases alive: one timer that extends every delivery a consumer holds but has not settled.

A step runner holds one delivery while its step runs; a monitor holds hundreds (its inbox, the
batch it verifies, the batch it commits, all of them while its store is down). Either way the
leases must not run out while the holder lives, or the broker redelivers the messages and their
delivery counts climb toward ``max_deliveries``. ``LeaseKeeper`` beats every ``interval`` seconds
(a third of the lease by default) with one timer, not a task per delivery, and extends each
delivery still held. A lost lease (``LeaseLostError``) is logged once and that delivery dropped;
any other failure (the broker briefly unreachable) is logged and the delivery kept.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from ..errors import LeaseLostError
from .base import Delivery, Transport

__all__ = ["LeaseGroup", "LeaseKeeper", "heartbeat_interval"]

logger = logging.getLogger(__name__)


def heartbeat_interval(transport: Transport) -> float:
    """How often to extend a lease of ``transport``: a third of its ``visibility_timeout``."""
    return max(transport.visibility_timeout / 3, 0.01)


class LeaseKeeper:
    """Extends the leases of the deliveries it holds every ``interval`` seconds, while entered.

    ``hold(delivery)`` adds one (with the correlation id its log lines name), ``release`` drops
    it; settled deliveries are dropped by themselves. Use as ``with keeper: ...``.
    """

    __slots__ = ("_beating", "_held", "_interval", "_loop", "_timer")

    def __init__(self, interval: float, *deliveries: Delivery, correlation_id: str = "?") -> None:
        """Keep ``deliveries`` (and any held later) leased, beating every ``interval`` seconds."""
        self._interval = interval
        self._loop: asyncio.AbstractEventLoop | None = None  # the running one, once entered
        self._timer: asyncio.TimerHandle | None = None
        self._beating: asyncio.Task[None] | None = None
        self._held: dict[Delivery, str] = dict.fromkeys(deliveries, correlation_id)

    def __len__(self) -> int:
        return len(self._held)

    def hold(self, delivery: Delivery, correlation_id: str = "?") -> None:
        """Keep ``delivery``'s lease until it is settled or released."""
        self._held[delivery] = correlation_id

    def release(self, delivery: Delivery) -> None:
        """Stop extending ``delivery`` (it was settled, or given up on)."""
        self._held.pop(delivery, None)

    def __enter__(self) -> LeaseKeeper:
        self._start()
        return self

    def _start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._timer = self._loop.call_later(self._interval, self._beat)

    def __exit__(self, *exc_info: object) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._beating is not None:
            self._beating.cancel()
            self._beating = None

    def _beat(self) -> None:
        assert self._loop is not None  # a timer runs only once started
        self._timer = self._loop.call_later(self._interval, self._beat)
        if self._beating is not None and not self._beating.done():
            return  # the previous beat is still extending (a slow broker): do not pile up
        for delivery in [d for d in self._held if d.settled]:
            del self._held[delivery]
        if self._held:
            self._beating = self._loop.create_task(self._extend_all())

    async def _extend_all(self) -> None:
        for delivery, correlation_id in list(self._held.items()):
            if delivery not in self._held or delivery.settled:
                continue
            try:
                await delivery.extend()
            except LeaseLostError as exc:
                self._held.pop(delivery, None)  # nothing left to keep
                logger.warning(
                    "[%s] lease of message %s on %s lost while it was held (%s); the work carries on",
                    correlation_id,
                    delivery.message_id,
                    delivery.queue,
                    exc,
                    extra={"correlation_id": correlation_id},
                )
            except Exception as exc:  # the broker may be away; the lease may run out
                logger.warning(
                    "[%s] could not extend the lease of message %s on %s: %s",
                    correlation_id,
                    delivery.message_id,
                    delivery.queue,
                    exc,
                    extra={"correlation_id": correlation_id},
                )


class LeaseGroup(LeaseKeeper):
    """A LeaseKeeper for deliveries held a while each, such as a worker's running steps.

    It is never entered: its timer starts with a hold while it is idle and stops at the
    first beat that finds nothing held. A busy worker so keeps one timer for all its steps
    (a hold and a release are dict operations, not a timer each) and an idle one keeps none.
    A delivery is extended at the first beat after its hold, at most ``interval()`` seconds
    later (asked each time the timer starts).
    """

    __slots__ = ("_interval_of",)

    def __init__(self, interval: Callable[[], float]) -> None:
        """Beat every ``interval()`` seconds while anything is held."""
        super().__init__(0.0)
        self._interval_of = interval

    def hold(self, delivery: Delivery, correlation_id: str = "?") -> None:
        """Keep ``delivery``'s lease until it is settled or released."""
        self._held[delivery] = correlation_id
        if self._timer is None:
            self._interval = self._interval_of()
            self._start()

    def _beat(self) -> None:
        if self._held or (self._beating is not None and not self._beating.done()):
            super()._beat()
        else:
            self._timer = None  # idle: the next hold starts the timer again
