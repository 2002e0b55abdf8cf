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
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from paigeant.errors import TransportConnectionError
from paigeant.transport import Outgoing

from ._codec import delay_ms, encode_headers
from ._keys import CONSUMER_GROUP

if TYPE_CHECKING:
    from .transport import RedisTransport

__all__ = ["AckBatcher", "AckResult"]

logger = logging.getLogger(__name__)

#: Most acks sent in one script call.
MAX_BATCH_ITEMS = 128
#: Body bytes after which a batch is closed (a single larger ack still goes alone).
MAX_BATCH_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class AckResult:
    """What one ack did: whether the entry was still pending, and forwards skipped as repeats."""

    acked: bool
    skipped: int


@dataclass(slots=True)
class _Item:
    stream: str
    entry_id: str
    forward: Sequence[Outgoing]
    future: asyncio.Future[AckResult]
    size: int = field(default=0)


class AckBatcher:
    """Queues acks of one transport and sends them in batches, one script call in flight."""

    def __init__(self, transport: RedisTransport) -> None:
        """Batch acks for ``transport`` (its client, scripts and key space)."""
        self._transport = transport
        self._queue: list[_Item] = []
        self._flusher: asyncio.Task[None] | None = None
        self._connection: Redis | None = None
        self._connection_of: Redis | None = None

    async def ack(self, stream: str, entry_id: str, forward: Sequence[Outgoing]) -> AckResult:
        """Ack ``entry_id`` of ``stream`` and add ``forward``, atomically; returns when done."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[AckResult] = loop.create_future()
        size = sum(len(out.body) for out in forward)
        self._queue.append(_Item(stream, entry_id, forward, future, size))
        if self._flusher is None:
            self._flusher = loop.create_task(self._flush())
        return await future  # cancelling the caller drops its ack unless already sent

    async def drain(self) -> None:
        """Wait until every queued ack has been sent (or has failed)."""
        while self._flusher is not None:
            await asyncio.wait({self._flusher})

    async def close(self) -> None:
        """Give the batcher's own connection back to the pool."""
        connection, self._connection, self._connection_of = self._connection, None, None
        if connection is not None:
            await connection.aclose()

    def _own_connection(self) -> Redis | None:
        """A connection for this batcher alone (one flush at a time), from the current pool."""
        client = self._transport.current_client()
        if client is None:
            return None
        if self._connection_of is not client:
            self._connection, self._connection_of = client.client(), client
        return self._connection

    async def _flush(self) -> None:
        try:
            while self._queue:
                batch = self._take()
                if batch:
                    await self._send(batch)
        finally:
            self._flusher = None
            for item in self._queue:  # only when the flusher itself was cancelled
                if not item.future.done():
                    item.future.set_exception(TransportConnectionError("ack was not sent"))
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
        keys, args = self._script_input(batch)
        try:
            replies = await self._transport.run_script(
                "ack", keys, args, connection=self._own_connection()
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

    def _script_input(self, batch: list[_Item]) -> tuple[list[str], list[str | int | bytes]]:
        transport = self._transport
        key_space = transport.keys
        keys: list[str] = []
        args: list[str | int | bytes] = [CONSUMER_GROUP, transport.dedup_ttl_ms, len(batch)]
        for item in batch:
            keys.append(item.stream)
            args.extend((item.entry_id, len(item.forward)))
            for out in item.forward:
                keys.extend(key_space.queue_keys(out.queue))
                args.extend(
                    (
                        out.message_id,
                        bytes(out.body),
                        encode_headers(out.headers),
                        delay_ms(out.delay),
                        uuid.uuid4().hex if out.delay > 0 else "",  # names a delayed message
                    )
                )
        return keys, args


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
