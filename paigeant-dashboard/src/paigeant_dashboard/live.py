"""Live updates: one ``store.watch()`` per process, fanned out to every open page's event stream.

``StoreFeed`` keeps the store connected (retrying while it is unreachable, remembering why) and
publishes each changed record to the ``Hub``; each server-sent-event stream subscribes to the
hub and receives batches of changed records, coalesced, so N open tabs cost one watcher.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterator
from typing import Any

from paigeant import StoreUnavailableError, WorkflowRecord, WorkflowStore

__all__ = ["Hub", "StoreDownError", "StoreFeed", "Subscription", "sse_event"]

logger = logging.getLogger(__name__)

#: Changes a slow stream may fall behind before it is told to reload instead.
_BACKLOG = 1000


def sse_event(name: str, data: Any) -> bytes:
    """One server-sent event; ``json.dumps`` never writes a raw newline, so one data line is enough."""
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


class Subscription:
    """One stream's view of the hub: batches of changed records, newest version of each."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[WorkflowRecord | None] = asyncio.Queue(_BACKLOG)
        #: Set when changes were dropped because this stream fell behind: the page must reload.
        self.overflowed = False
        self.closed = False

    def offer(self, record: WorkflowRecord | None) -> None:
        """Queue a change (None: the hub closes); a full queue marks the stream overflowed."""
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            self.overflowed = True
            if record is None:  # closing wins over a backlog
                self.closed = True

    async def batch(self, timeout: float) -> list[WorkflowRecord] | None:
        """The changes queued (waiting up to ``timeout`` for the first); None when the hub closed.

        An empty list means ``timeout`` passed without a change (time for a keepalive).
        """
        if self.closed:
            return None
        try:
            first = await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return []
        latest: dict[str, WorkflowRecord] = {}
        item = first
        while True:
            if item is None:
                self.closed = True
                return None
            latest.pop(item.correlation_id, None)
            latest[item.correlation_id] = item
            try:
                item = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                return list(latest.values())


class Hub:
    """Fans changed records out to every subscription; ``close()`` ends every stream."""

    def __init__(self) -> None:
        self._subscriptions: set[Subscription] = set()
        self.closed = False

    @property
    def subscribers(self) -> int:
        """How many streams are open."""
        return len(self._subscriptions)

    def publish(self, record: WorkflowRecord) -> None:
        """Hand ``record`` to every subscription (on the server's event loop)."""
        for subscription in list(self._subscriptions):
            subscription.offer(record)

    def close(self) -> None:
        """End every open stream now and refuse new ones (server shutdown)."""
        self.closed = True
        for subscription in list(self._subscriptions):
            subscription.offer(None)

    @contextlib.contextmanager
    def subscribe(self) -> Iterator[Subscription]:
        """``with hub.subscribe() as subscription:`` receives changes until the block ends."""
        subscription = Subscription()
        if self.closed:
            subscription.closed = True
        self._subscriptions.add(subscription)
        try:
            yield subscription
        finally:
            self._subscriptions.discard(subscription)


class StoreDownError(Exception):
    """The workflow store cannot be used now; the message says why and what to do."""


class StoreFeed:
    """Keeps ``store`` connected and feeds its ``watch()`` into ``hub``; retries while it is down."""

    def __init__(self, store: WorkflowStore, hub: Hub, *, retry_interval: float = 2.0) -> None:
        """Watch ``store`` for ``hub``, retrying a failed connection every ``retry_interval`` s."""
        self.store = store
        self.hub = hub
        self.retry_interval = retry_interval
        #: Why the store cannot be used, while it cannot.
        self.problem: str | None = "the workflow store is not connected yet"
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Connect once (so the first page sees the store), then watch in the background."""
        await self._connect()
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        """Stop watching and close the store."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.store.close()

    def require(self) -> WorkflowStore:
        """The connected store; StoreDownError with the reason while it is down."""
        if self.problem is not None:
            raise StoreDownError(self.problem)
        return self.store

    async def _connect(self) -> bool:
        try:
            await self.store.connect()
        except (StoreUnavailableError, OSError) as exc:
            self._down(str(exc))
            return False
        if self.problem is not None:
            logger.info("dashboard reading %s", self.store.describe())
        self.problem = None
        return True

    def _down(self, reason: str) -> None:
        if reason != self.problem:
            logger.error("the workflow store cannot be used: %s", reason)
        self.problem = reason

    async def _run(self) -> None:
        while True:
            if self.problem is None or await self._connect():
                try:
                    async for record in self.store.watch():
                        self.hub.publish(record)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the store went away: say so, reconnect
                    self._down(f"{self.store.describe()} stopped answering: {exc}")
                    with contextlib.suppress(Exception):
                        await self.store.close()
            await asyncio.sleep(self.retry_interval)
