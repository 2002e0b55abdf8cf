"""The transport's one AMQP connection: a bounded first connect, reconnects on demand after.

aio-pika's robust connection restores consumers only partly and leaves acks on channels of the
old connection raising, so the transport does not use it. ``Link`` holds a plain connection;
whoever finds it broken (a publish, a consume loop) asks for ``connection()`` again, which
reconnects (once, for every waiter) with a backoff. Everything that fails says which host it
tried and never the password.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection
from aio_pika.connection import make_url
from aio_pika.exceptions import AMQPError, ProbableAuthenticationError

from paigeant import TransportConnectionError, redact_url

__all__ = [
    "CONNECTION_ERRORS",
    "TIMEOUT_OR_CONNECTION_ERRORS",
    "Link",
    "LinkClosedError",
    "close_quietly",
]

logger = logging.getLogger(__name__)

#: What a broken or unreachable connection raises from aio-pika and aiormq.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (AMQPError, OSError, RuntimeError)
#: CONNECTION_ERRORS plus a timeout: what a bounded broker round trip may raise.
TIMEOUT_OR_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (TimeoutError, *CONNECTION_ERRORS)
_T = TypeVar("_T")
#: Pauses between reconnect attempts: doubling from the first to the last.
_FIRST_BACKOFF, _LAST_BACKOFF = 0.1, 2.0


class _QuietConnectFailures(logging.Filter):
    """Drops aiormq's error log of each refused connection attempt: Link reports them once."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("error when creating transport")


logging.getLogger("aiormq.connection").addFilter(_QuietConnectFailures())


class LinkClosedError(TransportConnectionError):
    """The transport disconnected: no connection will be made again."""


def _host(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname or '?'}:{parts.port or (5671 if parts.scheme == 'amqps' else 5672)}"


class Link:
    """One AMQP connection to ``url``, opened again whenever someone finds it broken."""

    def __init__(self, url: str, *, connect_timeout: float, connect_attempts: int) -> None:
        """Prepare a connection to ``url``; nothing connects before ``open()``."""
        self.url = url
        self.safe_url = redact_url(url)
        self._vhost = unquote(urlsplit(url).path[1:]) or "/"
        self.host = _host(url)
        self.connect_timeout = connect_timeout
        self.connect_attempts = connect_attempts
        #: Bumped on every new connection; channels and delivery tags of older ones are gone.
        self.generation = 0
        self._connection: AbstractConnection | None = None
        self._closed = True
        self._lock = asyncio.Lock()
        self._outage_logged = False
        self._reconnecting: asyncio.Task[AbstractConnection] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def closed(self) -> bool:
        """Whether the link was closed (or never opened)."""
        return self._closed

    def _describe(self, exc: BaseException) -> str:
        password = urlsplit(self.url).password
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if password:
            text = text.replace(password, "***")
        if isinstance(exc, ProbableAuthenticationError) or "ACCESS_REFUSED" in text:
            text += " (check the user name, password and virtual host in the URL)"
        elif "Connection.Close" in text:  # refused while opening: aiormq loses the reason
            text += (
                f" (RabbitMQ closed the connection while opening virtual host "
                f"{self._vhost!r}: most often it does not exist or the user may not use it; "
                "check the virtual host in the URL)"
            )
        return text

    async def _connect_once(self, timeout: float) -> AbstractConnection:
        # What aio_pika.connect() does, except that a failed attempt's Connection is closed:
        # left open, its __del__ schedules close() on whatever loop runs when the garbage
        # collector finds it, and outside a loop that coroutine is never awaited.
        connection = aio_pika.Connection(make_url(self.url))
        try:
            await asyncio.wait_for(connection.connect(timeout=timeout), timeout)
            return connection
        except BaseException as exc:
            with contextlib.suppress(Exception):
                await connection.close()
            if isinstance(exc, TIMEOUT_OR_CONNECTION_ERRORS):
                raise TransportConnectionError(
                    f"cannot connect to RabbitMQ at {self.host} ({self.safe_url}): "
                    f"{self._describe(exc)}"
                ) from exc
            raise

    async def open(self) -> None:
        """Connect, trying ``connect_attempts`` times; TransportConnectionError if all fail.

        On a link already open (a transport shared by a worker and a dispatcher, say) it only
        waits, as long as those attempts would take, for a reconnect under way: it never
        closes the link, so consume loops and later publishes carry on.
        """
        async with self._lock:
            if not self._closed:
                opened_before = True
            else:
                opened_before = False
                self._closed = False
        if opened_before:
            if self.current() is None:
                budget = (self.connect_timeout + _LAST_BACKOFF) * self.connect_attempts
                await self.connection(time.monotonic() + budget)
            return
        error: TransportConnectionError | None = None
        for attempt in range(self.connect_attempts):
            if attempt:
                await asyncio.sleep(min(_FIRST_BACKOFF * 2**attempt, _LAST_BACKOFF))
            try:
                self._install(await self._connect_once(self.connect_timeout))
                return
            except TransportConnectionError as exc:
                error = exc
            except BaseException:
                self._closed = True
                raise
        self._closed = True
        assert error is not None
        raise error

    def _install(self, connection: AbstractConnection) -> None:
        self._connection = connection
        self.generation += 1
        connection.close_callbacks.add(lambda *_: self._lost(connection))
        if self._outage_logged:
            logger.warning("reconnected to RabbitMQ at %s", self.host)
            self._outage_logged = False

    def _lost(self, connection: AbstractConnection) -> None:
        if connection is self._connection:
            self._connection = None

    def current(self) -> AbstractConnection | None:
        """The open connection, or None while there is none."""
        connection = self._connection
        if connection is None or connection.is_closed or not connection.connected.is_set():
            return None
        return connection

    async def connection(self, deadline: float | None = None) -> AbstractConnection:
        """The open connection, waiting for a reconnect until ``deadline`` (monotonic; None: ever).

        One reconnect task serves every caller, each waiting only as long as its own deadline
        allows: a consume loop content to wait for ever never holds up a bounded publish.
        Raises TransportConnectionError when the deadline passes, LinkClosedError once the
        transport disconnected.
        """
        connection = self.current()
        if connection is not None:
            return connection
        if self._closed:
            raise LinkClosedError(f"the transport to {self.host} is disconnected")
        if self._reconnecting is None or self._reconnecting.done():
            self._reconnecting = self.spawn(self._reconnect())
        timeout = None if deadline is None else deadline - time.monotonic()
        if timeout is not None and timeout <= 0:
            raise TransportConnectionError(f"RabbitMQ at {self.host} is unreachable (reconnecting)")
        reconnecting = self._reconnecting
        try:
            return await asyncio.wait_for(asyncio.shield(reconnecting), timeout)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if reconnecting.cancelled() and not (current and current.cancelling()):
                raise LinkClosedError(f"the transport to {self.host} is disconnected") from None
            raise
        except TimeoutError as exc:
            raise TransportConnectionError(
                f"RabbitMQ at {self.host} is unreachable (still reconnecting)"
            ) from exc

    async def _reconnect(self) -> AbstractConnection:
        backoff = _FIRST_BACKOFF
        while True:
            if self._closed:
                raise LinkClosedError(f"the transport to {self.host} is disconnected")
            connection = self.current()
            if connection is not None:
                return connection
            try:
                connection = await self._connect_once(self.connect_timeout)
            except TransportConnectionError as exc:
                if not self._outage_logged:
                    logger.warning("RabbitMQ connection lost; reconnecting: %s", exc)
                    self._outage_logged = True
            else:
                if self._closed:
                    await close_quietly(connection)
                    continue
                self._install(connection)
                return connection
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _LAST_BACKOFF)

    def spawn(self, coroutine: Coroutine[Any, Any, _T]) -> asyncio.Task[_T]:
        """Run ``coroutine`` in a task kept (and cancelled by ``close()``) by the link."""
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)

        def done(finished: asyncio.Task[_T]) -> None:
            self._tasks.discard(finished)
            if not finished.cancelled():
                finished.exception()  # retrieved: the callers saw it, or nobody waited

        task.add_done_callback(done)
        return task

    def broken(self, connection: AbstractConnection | None) -> None:
        """Note that ``connection`` failed; the next ``connection()`` call opens another."""
        if connection is not None and connection is self._connection:
            self._connection = None
            self.spawn(close_quietly(connection))

    async def close(self) -> None:
        """Close the connection; idempotent. No connection is made after this."""
        self._closed = True
        connection, self._connection = self._connection, None
        if connection is not None:
            await close_quietly(connection)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def close_quietly(closable: AbstractConnection | AbstractChannel) -> None:
    """Close a connection or channel within 5 s; one already broken needs nothing more."""
    try:
        await asyncio.wait_for(closable.close(), 5)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # already broken: nothing to do
        logger.debug("closing a RabbitMQ %s: %r", type(closable).__name__, exc)
