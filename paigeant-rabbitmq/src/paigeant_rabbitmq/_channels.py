"""A channel kept open on the link's current connection, reopened when it or the link broke."""

from __future__ import annotations

import asyncio

from aio_pika.abc import AbstractChannel
from aiormq.abc import AbstractChannel as RawChannel

from ._link import Link

__all__ = ["KeptChannel"]


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
        """The open channel (aiormq's), opening a new one (reconnecting until ``deadline``)."""
        raw = self._usable()
        if raw is not None:
            return raw
        async with self._lock:
            raw = self._usable()
            if raw is not None:
                return raw
            connection = await self._link.connection(deadline)
            try:
                self._channel = await connection.channel(
                    publisher_confirms=self._confirms, on_return_raises=self._confirms
                )
                self._raw = await self._channel.get_underlay_channel()
                self._opened_on = connection
            except BaseException:
                self._link.broken(connection)
                raise
            return self._raw

    def broken(self) -> None:
        """Forget the channel (it failed); the next ``get()`` opens another."""
        self._channel = None

    async def close(self) -> None:
        """Close the channel if it is open."""
        channel, self._channel = self._channel, None
        if channel is not None and not channel.is_closed:
            try:
                await asyncio.wait_for(channel.close(), 5)
            except asyncio.CancelledError:
                raise
            except Exception:  # the connection is going anyway
                pass
