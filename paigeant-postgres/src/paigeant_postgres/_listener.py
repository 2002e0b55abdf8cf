"""The LISTEN connection of a store: one per store, shared by its watchers, reconnected by itself.

Every ``watch()`` of a store waits on the same connection, which listens on the store's channel
(notified at each commit) and wakes every watcher. When the connection drops (the server
restarted, a proxy cut it, an administrator terminated it), the listener connects again with
backoff and listens again, then wakes every watcher: each looks again from the position it
holds, so a change committed while nobody listened is still seen. While it cannot reconnect,
watchers keep their slow poll; after ``give_up_after`` seconds down it gives up and every
watcher raises ``StoreUnavailableError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

from paigeant import StoreUnavailableError

__all__ = ["Listener"]

logger = logging.getLogger(__name__)

#: First and longest pause between two attempts to reconnect.
_FIRST_BACKOFF, _MAX_BACKOFF = 0.1, 5.0


class Listener:
    """LISTEN on ``channel`` through connections made by ``connect``; wakes subscribed events."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[psycopg.AsyncConnection[Any]]],
        channel: str,
        *,
        give_up_after: float,
        check_every: float,
        where: str,
    ) -> None:
        """Listen through ``connect()``'s connections; give up after ``give_up_after`` s down.

        Args:
            check_every: seconds without a notification after which the connection is probed
                (a ``SELECT 1``), so a connection that died silently is noticed.
            where: the store's description, for messages.
        """
        self._connect = connect
        self._channel = channel
        self._give_up_after = give_up_after
        self._check_every = check_every
        self._where = where
        self._subscribers: set[asyncio.Event] = set()
        self._listening = asyncio.Event()
        self._failure: StoreUnavailableError | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """Whether the listening task runs (there are subscribers and it has not given up)."""
        return self._task is not None and not self._task.done()

    def subscribe(self) -> asyncio.Event:
        """An event set at each notification and after each reconnect; starts listening."""
        changed = asyncio.Event()
        self._subscribers.add(changed)
        if not self.running:
            self._failure = None
            self._listening.clear()
            self._task = asyncio.get_running_loop().create_task(self._run())
        return changed

    async def unsubscribe(self, changed: asyncio.Event) -> None:
        """Stop waking ``changed``; the last subscriber to leave closes the connection."""
        self._subscribers.discard(changed)
        if not self._subscribers:
            await self.close()

    async def listening(self) -> None:
        """Wait until LISTEN is in place; StoreUnavailableError if the listener gave up."""
        while not self._listening.is_set():
            self.check()
            changed = asyncio.Event()
            self._subscribers.add(changed)
            try:
                await changed.wait()
            finally:
                self._subscribers.discard(changed)
        self.check()

    def check(self) -> None:
        """Raise StoreUnavailableError if the listener gave up reconnecting."""
        if self._failure is not None:
            raise self._failure

    async def close(self) -> None:
        """Stop listening and close the connection; idempotent."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _wake_all(self) -> None:
        for changed in list(self._subscribers):
            changed.set()

    async def _run(self) -> None:
        down_since: float | None = None
        backoff = _FIRST_BACKOFF
        while True:
            try:
                connection = await self._connect()
            except (psycopg.Error, OSError) as exc:
                error: Exception = exc
            else:
                try:
                    await connection.execute(f'LISTEN "{self._channel}"')
                    if down_since is not None:
                        logger.info("listening on %s again", self._where)
                    down_since, backoff = None, _FIRST_BACKOFF
                    self._listening.set()
                    self._wake_all()  # changes committed while nobody listened are looked for
                    await self._relay(connection)
                    continue
                except (psycopg.Error, OSError, TimeoutError) as exc:
                    error = exc
                finally:
                    self._listening.clear()
                    with contextlib.suppress(Exception):
                        await asyncio.shield(connection.close())
            now = time.monotonic()
            down_since = now if down_since is None else down_since
            if now - down_since >= self._give_up_after:
                self._failure = StoreUnavailableError(
                    f"watch() lost {self._where} and could not listen again within "
                    f"{self._give_up_after:g}s: {' '.join(str(error).split())}"
                )
                logger.error("%s", self._failure)
                self._wake_all()
                return
            logger.warning(
                "the LISTEN connection to %s failed (%s); reconnecting in %.1fs",
                self._where,
                " ".join(str(error).split()),
                backoff,
            )
            self._wake_all()  # watchers look again (their poll goes on meanwhile)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF)

    async def _relay(self, connection: psycopg.AsyncConnection[Any]) -> None:
        """Wake the watchers at each notification; probe the connection when it is quiet."""
        while True:
            notified = False
            async for _ in connection.notifies(timeout=self._check_every, stop_after=1):
                notified = True
            if notified:
                self._wake_all()
            else:
                await asyncio.wait_for(connection.execute("SELECT 1"), self._check_every)
