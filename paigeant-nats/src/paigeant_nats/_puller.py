"""Pull requests to one durable consumer, on an inbox of their own, with each arrival's time.

Not nats-py's ``PullSubscription.fetch``: that turns 409s (consumer deleted, too many waiting
requests) into timeouts, hangs across a server restart with ``timeout=None``, gives no arrival
time (the local lease clock needs it) and costs a request/response round per batch. Here the
server streams deliveries into a buffer while the consumer works; statuses are seen as such.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from ._connection import reraise_swallowed_cancel

__all__ = ["Puller"]

#: Seconds a pull request waits on the server for messages before it expires (408).
EXPIRES = 5.0


class Puller:
    """Keeps pull requests for ``capacity`` messages outstanding; buffers what arrives.

    Its own subscription is what keeps its requests alive on the server: once unsubscribed,
    the server drops them (no interest), so a closed loop is never handed a message.
    """

    def __init__(self, stream: str, durable: str) -> None:
        """Pull from ``durable`` on ``stream``."""
        self.stream = stream
        self.durable = durable
        self.subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"
        #: (arrival on the monotonic clock, message), oldest first.
        self.buffer: deque[tuple[float, Msg]] = deque()
        #: Messages asked for and neither received nor expired.
        self.outstanding = 0
        #: Set when the server says the consumer is gone: the owner recreates it.
        self.consumer_missing = False
        #: Messages received since the last request was sent.
        self.delivered_since_request = 0
        self._client: Client | None = None
        self._subscription: Subscription | None = None
        self._inbox = ""
        self._wake = asyncio.Event()
        self._requests_end = 0.0
        self._hold_until = 0.0
        self._timer: asyncio.TimerHandle | None = None

    async def attach(self, client: Client) -> None:
        """Subscribe an inbox on ``client`` (again, after a new connection); nothing outstanding."""
        await self.detach()
        self._client = client
        self._inbox = client.new_inbox()
        self._subscription = await client.subscribe(self._inbox, cb=self._on_message)
        reraise_swallowed_cancel()
        self.outstanding = 0
        self.consumer_missing = False

    async def detach(self) -> None:
        """Unsubscribe (the server then drops this puller's requests)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            with contextlib.suppress(Exception):  # the client may be closed or reconnecting
                await subscription.unsubscribe()

    def requests_lost(self) -> None:
        """Forget outstanding requests (a reconnect: the server may not have them any more)."""
        self.outstanding = 0
        self._requests_end = 0.0
        self.wake()

    def wake(self) -> None:
        """Wake ``wait()``."""
        self._wake.set()

    async def top_up(self, free: int, prefetch: int) -> None:
        """Keep long-poll requests for ``free`` messages outstanding (re-asking in halves).

        For a puller that always wants messages (the promoter): requested messages may arrive
        while nobody waits for them.
        """
        self._forget_lost_requests()
        want = free - self.outstanding
        if want <= 0 or (self.outstanding and want < max(1, prefetch // 2)):
            return
        await self.request(want)

    async def request(self, batch: int, *, expires: float = EXPIRES) -> None:
        """Ask for ``batch`` messages, waiting on the server up to ``expires`` seconds."""
        now = time.monotonic()
        if now < self._hold_until:
            self.wake_at(self._hold_until)  # ask then
            return
        if self._client is None or batch <= 0:
            return
        payload = f'{{"batch":{batch},"expires":{int(expires * 1e9)}}}'.encode()
        # The server does not always say (408) when a request expired: count it done locally.
        self._requests_end = now + expires + min(1.0, max(0.02, expires / 5))
        self.wake_at(self._requests_end)
        self.outstanding += batch
        self.delivered_since_request = 0
        try:
            await self._client.publish(self.subject, payload, reply=self._inbox)
        except BaseException:
            self.outstanding -= batch
            raise
        reraise_swallowed_cancel()

    def _forget_lost_requests(self) -> None:
        if self.outstanding and time.monotonic() > self._requests_end:
            self.outstanding = 0  # no status came back for them: presumed lost

    def idle(self) -> bool:
        """Whether no request is outstanding (lost ones forgotten)."""
        self._forget_lost_requests()
        return self.outstanding == 0

    def arm(self) -> None:
        """Forget earlier wake-ups: the owner is about to look at everything again."""
        self._wake.clear()

    def wake_at(self, when: float) -> None:
        """Wake ``wait()`` at ``when`` (monotonic clock) at the latest; replaces earlier calls."""
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_at(when - time.monotonic() + loop.time(), self._wake.set)

    async def wait(self) -> None:
        """Wait until something arrives, ``wake()`` is called (since ``arm()``) or ``wake_at``."""
        if self.buffer or self._wake.is_set():
            return
        await self._wake.wait()

    async def _on_message(self, msg: Msg) -> None:
        if msg.reply:
            if self.outstanding:
                self.outstanding -= 1
            self.delivered_since_request += 1
            self.buffer.append((time.monotonic(), msg))
            self._wake.set()
            return
        headers = msg.headers or {}
        status = headers.get("Status", "")
        if status in ("408", "404"):  # a request expired: what it still wanted is void
            left = int(headers.get("Nats-Pending-Messages") or 0)
            self.outstanding = max(0, self.outstanding - left)
        elif (status == "409" and "Deleted" in headers.get("Description", "")) or status == "503":
            self.consumer_missing = True
            self.outstanding = 0
        elif status.startswith("4"):  # 409 Exceeded MaxWaiting, leadership change, ...
            self.outstanding = 0
            self._hold_until = time.monotonic() + random.uniform(0.1, 0.5)
        else:
            return  # 100: an idle heartbeat
        self._wake.set()
