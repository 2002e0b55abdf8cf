"""Acks in flight: concurrent ack(forward=...) calls coalesced into one atomic script per batch.

Every delivery a worker finishes settles with an ack that may carry forwards. Sent one by one,
each is a round trip and, more costly on the client side, one full redis-py command. Here an ack
is queued and the queue is flushed as one ``ack`` script call: acks made while a flush is on the
wire go together in the next one. Nothing waits for a batch to fill, so a lone ack leaves at
once; under load, batches grow by themselves. Each item stays all-or-nothing (its targets are
checked before anything is written), and one item's error is reported to its caller alone.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from paigeant import Outgoing, TransportConnectionError

from ._codec import delay_ms, encode_headers
from ._keys import CONSUMER_GROUP

if TYPE_CHECKING:
    from .transport import RedisTransport

__all__ = ["AckBatcher", "AckResult"]


#: Most acks sent in one script call.
MAX_BATCH_ITEMS = 128
#: Body bytes after which a batch is closed (a single larger ack still goes alone).
MAX_BATCH_BYTES = 4 * 1024 * 1024
#: Why an ack made while (or after) the transport disconnects is refused.
_CLOSED = (
    "ack not sent: the transport is disconnecting or disconnected; the message stays "
    "unacknowledged and is redelivered (acks made before disconnect() are still sent)"
)


@dataclass(frozen=True, slots=True)
class AckResult:
    """What one ack did: whether the entry was still pending, and forwards skipped as repeats."""

    acked: bool
    skipped: int


@dataclass(slots=True)
class _Item:
    """One queued ack: its part of the script's KEYS and ARGV, and its caller's future."""

    keys: list[str]
    args: list[str | int | bytes]
    size: int
    future: asyncio.Future[AckResult]


class AckBatcher:
    """Queues acks of one transport and sends them in batches, one script call in flight.

    Closed until ``open()`` (the transport's connect) and again from the start of ``close()``
    (its disconnect): an ack made meanwhile raises TransportConnectionError at once.
    """

    def __init__(self, transport: RedisTransport) -> None:
        """Batch acks for ``transport`` (its scripts, key space and own connections)."""
        self._transport = transport
        self._queue: list[_Item] = []
        self._in_flight: list[_Item] = []
        self._flusher: asyncio.Task[None] | None = None
        self._connection: Redis | None = None
        self._accepting = False  # whether ack() queues (else it raises TransportConnectionError)
        self._closed = True  # whether the own connection is closed for good (none is opened)

    async def ack(self, stream: str, entry_id: str, forward: Sequence[Outgoing]) -> AckResult:
        """Ack ``entry_id`` of ``stream`` and add ``forward``, atomically; returns when done.

        A caller cancelled while its ack is still queued drops it (the message is then
        redelivered); once its batch has been taken for sending, the ack may still happen.
        Raises TransportConnectionError, sending nothing, once the transport disconnects.
        """
        keys, args, size = self._script_part(stream, entry_id, forward)  # bad input raises here
        if not self._accepting:
            raise TransportConnectionError(_CLOSED)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[AckResult] = loop.create_future()
        self._queue.append(_Item(keys, args, size, future))
        if self._flusher is None:
            self._flusher = loop.create_task(self._flush())
        return await future

    async def drain(self) -> None:
        """Wait until every ack made so far has been sent or has failed (later ones are not waited for)."""
        pending = [item.future for item in (*self._in_flight, *self._queue)]
        if pending:
            await asyncio.wait(pending)

    def open(self) -> None:
        """Accept acks (the transport has just connected); the connection opens on the first."""
        self._accepting = True
        self._closed = False

    async def close(self) -> None:
        """Refuse new acks, wait for those already made, then close the own connection.

        Until ``open()`` is called again, every ack raises TransportConnectionError.
        """
        self._accepting = False
        await self.drain()
        flusher = self._flusher
        if flusher is not None:  # it settled every future already; let it finish
            await asyncio.wait({flusher})
        self._closed = True
        connection, self._connection = self._connection, None
        if connection is not None:
            await self._transport.close_own_connection(connection)

    async def _flush(self) -> None:
        try:
            while self._queue:
                self._in_flight = self._take()
                if self._in_flight:
                    await self._send(self._in_flight)
                self._in_flight = []
        finally:
            self._flusher = None
            for item in (*self._in_flight, *self._queue):  # only if this task was cancelled
                if not item.future.done():
                    item.future.set_exception(TransportConnectionError("ack was not sent"))
            self._in_flight = []
            self._queue.clear()

    def _take(self) -> list[_Item]:
        self._queue = [item for item in self._queue if not item.future.done()]
        taken, size = 0, 0
        for item in self._queue:
            if taken and (taken >= MAX_BATCH_ITEMS or size + item.size > MAX_BATCH_BYTES):
                break
            taken += 1
            size += item.size
        batch = self._queue[:taken]
        del self._queue[:taken]
        return batch

    async def _send(self, batch: list[_Item]) -> None:
        """Run the ack script for ``batch`` and settle every caller's future, whatever happens."""
        keys: list[str] = []
        args: list[str | int | bytes] = [
            CONSUMER_GROUP,
            self._transport.dedup_ttl_ms,
            len(batch),
        ]
        for item in batch:
            keys.extend(item.keys)
            args.extend(item.args)
        try:
            if self._closed:  # never open a connection that close() would not close
                raise TransportConnectionError(_CLOSED)
            if self._connection is None:
                self._connection = self._transport.own_connection()
            replies = await self._transport.run_script(
                "ack", keys, args, connection=self._connection
            )
            if not isinstance(replies, list) or len(replies) != len(batch):
                raise ResponseError(
                    f"unexpected reply to a batch of {len(batch)} acks: {replies!r}"
                )
        except BaseException as exc:
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(_per_caller(exc))
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        for item, reply in zip(batch, replies, strict=True):
            if item.future.done():
                continue
            if isinstance(reply, bytes | str):
                message = reply.decode() if isinstance(reply, bytes) else reply
                item.future.set_exception(ResponseError(message))
            else:
                acked, skipped = reply
                item.future.set_result(AckResult(bool(int(acked)), int(skipped)))

    def _script_part(
        self, stream: str, entry_id: str, forward: Sequence[Outgoing]
    ) -> tuple[list[str], list[str | int | bytes], int]:
        """This ack's KEYS and ARGV in the ``ack`` script's layout, and its body bytes."""
        key_space = self._transport.keys
        keys = [stream]
        args: list[str | int | bytes] = [entry_id, len(forward)]
        size = 0
        for out in forward:
            body = bytes(out.body)
            size += len(body)
            keys.extend(key_space.queue_keys(out.queue))
            args.extend(
                (
                    out.message_id,
                    body,
                    encode_headers(out.headers),
                    delay_ms(out.delay),
                    uuid.uuid4().hex if out.delay > 0 else "",  # names a delayed message
                )
            )
        return keys, args, size


def _per_caller(exc: BaseException) -> BaseException:
    """A fresh exception for each waiting caller, chained to the batch's failure."""
    if isinstance(exc, asyncio.CancelledError):
        fresh: BaseException = TransportConnectionError("ack interrupted: transport closing")
    elif isinstance(exc, TransportConnectionError):
        fresh = TransportConnectionError(str(exc))
    elif isinstance(exc, ResponseError):
        fresh = type(exc)(str(exc))
    else:
        return exc
    fresh.__cause__ = exc
    return fresh
