"""Requests answered through one wildcard inbox: PubAcks, ack confirmations, lease renewals.

nats-py's ``request()`` costs a ``wait_for`` task per call; here every request is a plain
publish with a reply subject ``<inbox>.<token>`` and a future, resolved by one subscription
and failed by one sweeper task once ``timeout`` passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from paigeant import TransportConnectionError

__all__ = ["Replies"]


class Replies:
    """Futures for requests in flight, by reply token; one subscription, one sweeper."""

    def __init__(self, timeout: float) -> None:
        """Fail a request that gets no reply within ``timeout`` seconds."""
        self.timeout = timeout
        self._prefix = ""
        self._pending: dict[str, tuple[asyncio.Future[Msg], float]] = {}
        self._tokens = itertools.count()
        self._subscription: Subscription | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._idle: asyncio.Event | None = None

    async def start(self, client: Client) -> None:
        """Subscribe to a fresh inbox of ``client`` and start the sweeper."""
        self._prefix = client.new_inbox() + "."
        self._subscription = await client.subscribe(self._prefix + "*", cb=self._on_reply)
        self._sweeper = asyncio.ensure_future(self._sweep())

    async def stop(self) -> None:
        """Stop the sweeper and fail every request still waiting."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        self.fail_all("the transport disconnected before NATS replied")

    def new(self) -> tuple[str, asyncio.Future[Msg]]:
        """A reply subject and the future its reply resolves."""
        token = str(next(self._tokens))
        future: asyncio.Future[Msg] = asyncio.get_running_loop().create_future()
        self._pending[token] = (future, time.monotonic() + self.timeout)
        return self._prefix + token, future

    def forget(self, reply: str) -> None:
        """Drop the request of ``reply`` (its publish failed)."""
        self._pending.pop(reply[len(self._prefix) :], None)

    @property
    def in_flight(self) -> int:
        """Requests waiting for their reply."""
        return len(self._pending)

    def fail_all(self, why: str) -> None:
        """Fail every waiting request with TransportConnectionError (the connection broke)."""
        pending, self._pending = self._pending, {}
        for future, _ in pending.values():
            if not future.done():
                future.set_exception(TransportConnectionError(f"no reply from NATS: {why}"))

    async def wait_idle(self, timeout: float) -> None:
        """Wait (at most ``timeout`` seconds) until no request waits for its reply."""
        if not self._pending:
            return
        self._idle = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._idle.wait()
        self._idle = None

    async def _on_reply(self, msg: Msg) -> None:
        entry = self._pending.pop(msg.subject[len(self._prefix) :], None)
        if entry is not None and not entry[0].done():
            entry[0].set_result(msg)
        if self._idle is not None and not self._pending:
            self._idle.set()

    async def _sweep(self) -> None:
        interval = min(0.25, self.timeout / 4)
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            expired = []
            for token, (_, deadline) in self._pending.items():
                if deadline > now:
                    break  # one timeout for all: entries are in deadline order
                expired.append(token)
            for token in expired:
                future, _ = self._pending.pop(token)
                if not future.done():
                    future.set_exception(TimeoutError(f"no reply from NATS within {self.timeout}s"))
