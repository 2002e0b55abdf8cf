"""One nats-py client: a bounded first connect, endless reconnects after, quiet logging.

nats-py retries a first connect forever unless ``max_reconnect_attempts`` is positive, logs every
refused attempt with a traceback, and turns a broken connection into silent waits; this wraps it
so that ``connect()`` fails in bounded time and everything else raises TransportConnectionError.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import ConnectionClosedError, Error, NoRespondersError, OutboundBufferLimitError

from paigeant import ConfigurationError, TransportConnectionError, redact_url

from ._replies import Replies


class _GaveUp(Exception):
    """Raised out of nats-py's connect once ``connect_attempts`` tries failed."""

    def __init__(self, last: Exception) -> None:
        super().__init__(str(last))
        self.last = last


__all__ = ["Connection", "reraise_swallowed_cancel"]

logger = logging.getLogger(__name__)

#: Raised by nats-py when it cannot send (closed, reconnecting with a full buffer, ...).
SEND_ERRORS: tuple[type[BaseException], ...] = (Error, OSError)


def reraise_swallowed_cancel() -> None:
    """Raise CancelledError if the current task was cancelled inside a nats-py call.

    nats-py's flush swallows CancelledError (``except asyncio.CancelledError: pass``), so a task
    cancelled while publishing would otherwise carry on as if nothing happened.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class Connection:
    """A connected nats-py client plus its request inbox; reconnects by itself once connected."""

    def __init__(
        self,
        url: str,
        *,
        connect_timeout: float,
        connect_attempts: int,
        request_timeout: float,
        on_reconnected: Callable[[], Awaitable[None]],
        on_closed: Callable[[], Awaitable[None]],
    ) -> None:
        """Prepare a connection to ``url``; nothing happens before ``open()``."""
        self.url = url
        self.safe_url = redact_url(url)
        self.connect_timeout = connect_timeout
        self.connect_attempts = connect_attempts
        self.replies = Replies(request_timeout)
        self._on_reconnected = on_reconnected
        self._on_closed = on_closed
        self._client: Client | None = None
        self._closing = False
        self._outage_logged = False
        #: Failed tries while ``open()`` connects (None once connected: reconnects never stop).
        self._failed_attempts: int | None = None

    @property
    def client(self) -> Client:
        """The nats-py client (after ``open()``)."""
        if self._client is None:
            raise RuntimeError("the NATS connection is not open")
        return self._client

    @property
    def max_payload(self) -> int:
        """The largest message (headers included) the server accepts: its ``max_payload``."""
        return self.client.max_payload

    @property
    def is_connected(self) -> bool:
        """Whether the client is connected right now (not reconnecting, not closed)."""
        return self._client is not None and self._client.is_connected

    async def open(self) -> None:
        """Connect (bounded: ``connect_attempts`` tries), then check that JetStream is enabled."""
        client = Client()
        self._failed_attempts = 0
        try:
            options: dict[str, Any] = {  # nats-py types its seconds as int; floats work
                "servers": [self.url],
                "name": f"paigeant-{socket.gethostname()}-{os.getpid()}",
                "connect_timeout": self.connect_timeout,
                # Retried until _error counts connect_attempts failures and gives up (nats-py
                # alone makes one try more than max_reconnect_attempts, and 0 means forever).
                "allow_reconnect": True,
                "max_reconnect_attempts": -1,
                "reconnect_time_wait": 0.5,
                "ping_interval": 10,
                "max_outstanding_pings": 3,
                "error_cb": self._error,
                "disconnected_cb": self._disconnected,
                "reconnected_cb": self._reconnected,
                "closed_cb": self._closed,
            }
            await asyncio.wait_for(
                client.connect(**options),
                timeout=(self.connect_timeout + 1) * (self.connect_attempts + 1),
            )
        except (Error, OSError, TimeoutError, _GaveUp) as exc:
            self._closing = True  # a client that never connected: no callbacks, no reopening
            try:
                with contextlib.suppress(Exception):
                    await client.close()
            finally:
                self._closing = False
            cause = exc.last if isinstance(exc, _GaveUp) else exc
            raise TransportConnectionError(
                f"cannot connect to NATS at {self.safe_url} ({type(cause).__name__}: "
                f"{_quiet(cause, self.url)}). Is `nats-server -js` running there? Pass url=... or "
                "set PAIGEANT_NATS_URL."
            ) from None
        self._failed_attempts = None  # from now on reconnect forever: never give up
        self._client = client
        try:
            await client.request("$JS.API.INFO", b"", timeout=self.connect_timeout)
        except NoRespondersError:
            await self.close()
            raise ConfigurationError(
                f"JetStream is not enabled on the NATS server at {self.safe_url}: start it "
                "with `nats-server -js` (or `jetstream {}` in its config file)"
            ) from None
        except (Error, OSError, TimeoutError) as exc:
            await self.close()
            raise TransportConnectionError(
                f"NATS at {self.safe_url} did not answer a JetStream request ({exc})"
            ) from None
        await self.replies.start(client)
        logger.debug("connected to NATS at %s (max_payload %s)", self.safe_url, self.max_payload)

    async def close(self) -> None:
        """Fail waiting requests and close the client."""
        self._closing = True
        await self.replies.stop()
        client, self._client = self._client, None
        if client is not None and not client.is_closed:
            try:
                await client.close()
            except Exception as exc:  # closing a broken client must not fail disconnect()
                logger.debug("closing the NATS client failed: %s", exc)

    async def send(
        self,
        subject: str,
        payload: bytes,
        headers: Mapping[str, str] | None,
        reply: str = "",
        *,
        cancellable: bool = True,
    ) -> None:
        """Publish without waiting for anything; TransportConnectionError if it cannot be sent.

        ``cancellable=False`` for cleanup sends that must all go out while a task is cancelled.
        """
        try:
            await self.client.publish(
                subject, payload, reply=reply, headers=dict(headers) if headers else None
            )
        except OutboundBufferLimitError:
            raise TransportConnectionError(
                f"NATS at {self.safe_url} is unreachable and the client's outgoing buffer is full"
            ) from None
        except (ConnectionClosedError, RuntimeError) as exc:
            raise TransportConnectionError(f"the connection to NATS is closed ({exc})") from None
        except SEND_ERRORS as exc:
            raise TransportConnectionError(f"cannot send to NATS ({exc})") from None
        if cancellable:
            reraise_swallowed_cancel()

    async def request(
        self, subject: str, payload: bytes, headers: Mapping[str, str] | None, what: str
    ) -> Msg:
        """Publish with a reply subject and return the reply; TransportConnectionError if none.

        Bounded by the request timeout (``publish_timeout``). A request sent while the server
        is down waits in nats-py's buffer and goes out on reconnect, so it may still take
        effect after it raised.
        """
        reply, future = self.replies.new()
        try:
            await self.send(subject, payload, headers, reply)
        except BaseException:
            self.replies.forget(reply)
            raise
        try:
            return await future
        except TimeoutError:
            raise TransportConnectionError(
                f"{what}: no reply from NATS at {self.safe_url} within "
                f"{self.replies.timeout}s (it may or may not have been applied)"
            ) from None

    async def confirm(self, reply: str, command: bytes) -> Msg:
        """Send an ack-protocol ``command`` (``+ACK``, ``-NAK``, ``+WPI``) to a delivery's ack
        subject ``reply`` and return the server's answer, sent once it processed the command.
        """
        return await self.request(reply, command, None, f"{command.decode()} to {reply}")

    # -- nats-py callbacks -------------------------------------------------------------------

    async def _error(self, exc: Exception) -> None:
        logger.debug("NATS client error: %s: %s", type(exc).__name__, _quiet(exc, self.url))
        if self._failed_attempts is not None and isinstance(
            exc, (Error, OSError, TimeoutError, asyncio.TimeoutError)
        ):
            self._failed_attempts += 1  # connect() is still trying: bounded
            if self._failed_attempts >= self.connect_attempts:
                raise _GaveUp(exc)

    async def _disconnected(self) -> None:
        if self._closing:
            return
        self.replies.fail_all("the connection was lost before the reply came")
        if not self._outage_logged:
            self._outage_logged = True
            logger.warning("lost the connection to NATS at %s; reconnecting", self.safe_url)

    async def _reconnected(self) -> None:
        self._outage_logged = False
        logger.warning("reconnected to NATS at %s", self.safe_url)
        await self._on_reconnected()

    async def _closed(self) -> None:
        if self._closing:
            return
        self.replies.fail_all("the NATS client closed")
        logger.error(
            "the NATS client for %s closed itself (%s); opening a new connection",
            self.safe_url,
            _quiet(self._client.last_error, self.url) if self._client else "unknown reason",
        )
        await self._on_closed()


def _quiet(exc: BaseException | None, url: str) -> str:
    """``exc`` as text, with ``url``'s credentials never shown."""
    text = str(exc) if exc is not None else ""
    parts = urlsplit(url)
    for secret in (parts.password, parts.username):
        if secret:
            text = text.replace(secret, "***")
    return text or type(exc).__name__
