"""A channel kept open on the link's current connection, reopened when it or the link broke."""

from __future__ import annotations

import asyncio
import time

from aio_pika.abc import AbstractChannel, AbstractConnection
from aiormq.abc import AbstractChannel as RawChannel

from paigeant import TransportConnectionError

from ._link import Link, close_quietly

__all__ = ["RETRY_PAUSE", "KeptChannel"]

#: Seconds between two tries of an operation whose connection or channel broke.
RETRY_PAUSE = 0.05


class KeptChannel:
    """``get()`` returns an open channel, opening one on the current connection if needed."""

    def __init__(self, link: Link, *, confirms: bool) -> None:
        """A channel on ``link``; publisher confirms (and raising returns) if ``confirms``."""
        self._link = link
        self._confirms = confirms
        self._channel: AbstractChannel | None = None
        self._raw: RawChannel | None = None
        self._opened_on: object = None
        self._lock = asyncio.Lock()

    def _usable(self) -> RawChannel | None:
        channel = self._channel
        if channel is None or channel.is_closed:
            return None
        connection = self._link.current()
        if connection is None or connection is not self._opened_on:
            return None
        return self._raw

    async def get(self, deadline: float | None = None) -> RawChannel:
        """The open channel (aiormq's), opening a new one (reconnecting until ``deadline``).

        Opening is bounded by ``deadline`` too: a connection that does not answer a channel
        open in time is given up (TransportConnectionError) and opened again next time.
        """
        raw = self._usable()
        if raw is not None:
            return raw
        timeout = None if deadline is None else max(deadline - time.monotonic(), 0.001)
        connection: AbstractConnection | None = None
        try:
            async with asyncio.timeout(timeout), self._lock:
                raw = self._usable()
                if raw is not None:
                    return raw
                connection = await self._link.connection(deadline)
                try:
                    channel = await connection.channel(
                        publisher_confirms=self._confirms, on_return_raises=self._confirms
                    )
                    raw = await channel.get_underlay_channel()
                except Exception:
                    self._link.broken(connection)
                    raise
                self._channel, self._raw, self._opened_on = channel, raw, connection
                return raw
        except TimeoutError as exc:
            if connection is not None:
                self._link.broken(connection)  # it did not open a channel in time
            raise TransportConnectionError(
                f"RabbitMQ at {self._link.host} did not open a channel in time"
            ) from exc

    def broken(self) -> None:
        """Drop the channel (it failed), closing it in the background; ``get()`` opens another."""
        channel, self._channel, self._raw = self._channel, None, None
        if channel is not None and not channel.is_closed:
            self._link.spawn(close_quietly(channel))

    async def retry_after(self, exc: BaseException, deadline: float, failure: str) -> None:
        """The channel broke with ``exc``: drop it and pause before the next try.

        Raises TransportConnectionError (``exc`` itself if it is one, else ``failure``) when
        ``deadline`` leaves no time for another try.
        """
        self.broken()
        if time.monotonic() + RETRY_PAUSE >= deadline:
            if isinstance(exc, TransportConnectionError):
                raise exc
            raise TransportConnectionError(failure) from exc
        await asyncio.sleep(RETRY_PAUSE)

    async def close(self) -> None:
        """Close the channel if it is open."""
        channel, self._channel, self._raw = self._channel, None, None
        if channel is not None and not channel.is_closed:
            await close_quietly(channel)
