"""The promoter: moves due messages from the delay stream to their queues.

nats-server before 2.12 has no scheduled messages. A delayed message waits in the delay stream;
its consumer (``paigeant-promoter``, shared by every transport that consumes) receives it and
``-NAK``s it with the time left, so JetStream redelivers it when it is due, each message on its
own timer: no head-of-line blocking. A due message is published to its queue (deduplicated by
its delay-stream sequence, so a promotion repeated after a crash is dropped), then acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from typing import TYPE_CHECKING

from nats.aio.msg import Msg

from paigeant import MessageTooLargeError, PaigeantError

from ._codec import DUE, NATS_MSG_ID, ForeignMessage, Metadata, decode, metadata
from ._consumer import _OUTAGES, RECREATE_DELAY, SWEEP_INTERVAL
from ._errors import QueueFullError
from ._names import PROMOTER
from ._puller import EXPIRES, Puller
from .delivery import park

if TYPE_CHECKING:
    from .transport import NatsTransport

__all__ = ["Promoter"]

logger = logging.getLogger(__name__)

#: Delayed messages one promoter holds at once (not-yet-due ones are given back at once).
CAPACITY = 256
#: Seconds a promotion into a full queue waits before it is tried again.
FULL_QUEUE_RETRY = 5.0


class Promoter:
    """One transport's promoter task, competing with every other on the delay stream."""

    def __init__(self, transport: NatsTransport) -> None:
        """Promote for ``transport``'s prefix."""
        self.transport = transport
        self.puller = Puller(transport.names.delay_stream, PROMOTER)
        self._tasks: set[asyncio.Task[None]] = set()
        self._generation = -1
        self._needs_setup = True
        self._next_sweep = 0.0
        self._failures = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the promoter task (once)."""
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        """Stop promoting; messages it held come back to another promoter after 5 s."""
        task, self._task = self._task, None
        if task is not None:
            while not task.done():  # a cancel can be lost inside nats-py: repeat it
                task.cancel()
                await asyncio.wait({task}, timeout=0.5)
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for running in list(self._tasks):
            running.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.puller.detach()

    def on_reconnected(self) -> None:
        """Pull requests may be gone after a reconnect; set up again."""
        self.puller.requests_lost()
        self._needs_setup = True

    async def _run(self) -> None:
        puller = self.puller
        transport = self.transport
        while True:
            puller.arm()
            try:
                if self._needs_setup or puller.consumer_missing:
                    if puller.consumer_missing:
                        await asyncio.sleep(RECREATE_DELAY)  # let the server finish deleting
                    await transport.streams.ensure_promoter()
                    if self._generation != transport.generation or puller.consumer_missing:
                        await puller.attach(transport.connection.client)
                        self._generation = transport.generation
                    self._needs_setup = False
                if time.monotonic() >= self._next_sweep:
                    self._next_sweep = time.monotonic() + SWEEP_INTERVAL
                    await transport.streams.sweep(
                        transport.names.delay_stream, transport.names.delay_wildcard, PROMOTER
                    )
                while puller.buffer:
                    _, msg = puller.buffer.popleft()
                    self._handle(msg)
                await puller.top_up(CAPACITY - len(self._tasks), CAPACITY)
                if not puller.outstanding:  # no capacity: a finished promotion wakes it
                    puller.wake_at(time.monotonic() + EXPIRES)
                await puller.wait()
                self._failures = 0
            except asyncio.CancelledError:
                raise
            except _OUTAGES as exc:
                self._needs_setup = True
                self._failures += 1
                if self._failures == 1:
                    logger.warning("promoter: NATS unavailable (%s); retrying", exc)
                await asyncio.sleep(
                    min(2.0, 0.05 * 2 ** min(self._failures, 6)) * random.uniform(0.5, 1.5)
                )
            except Exception:
                logger.exception("promoter failed; restarting it")
                self._needs_setup = True
                await asyncio.sleep(1.0)

    def _handle(self, msg: Msg) -> None:
        """Give back a message that is not due yet; promote a due one in a task of its own."""
        headers = msg.headers or {}
        try:
            due_ms = int(headers.get(DUE, ""))
        except ValueError:
            due_ms = 0
        remaining = due_ms / 1000 - time.time()
        if remaining > 0.001:
            nak = f'-NAK {{"delay":{int(remaining * 1e9)}}}'.encode()
            task = asyncio.ensure_future(self.transport.connection.send(msg.reply, nak, None))
        else:
            task = asyncio.ensure_future(self._promote(msg))
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.debug("promoter task failed: %s", task.exception())
        if self._task is not None and len(self._tasks) < CAPACITY // 2:
            self.puller.wake()

    async def _promote(self, msg: Msg) -> None:
        transport = self.transport
        source = metadata(msg.reply)
        target = transport.names.queue_of_delay_subject(msg.subject)
        headers = dict(msg.headers or {})
        connection = transport.connection
        try:
            if DUE not in headers:
                raise ForeignMessage(f"delayed message without a {DUE} header", None)
            message_id, _, _ = decode(headers)
        except ForeignMessage as foreign:
            await self._reject(msg, target, foreign, source)
            return
        del headers[DUE]
        headers[NATS_MSG_ID] = f"delayed:{source.stream_seq}:{source.timestamp_ns}"
        try:
            await transport.store(target, msg.data, headers, what=f"cannot promote {message_id!r}")
        except MessageTooLargeError as exc:  # another producer's, at max_payload: never fits
            await self._reject(
                msg, target, ForeignMessage(f"cannot deliver it: {exc}", message_id), source
            )
            return
        except QueueFullError as exc:
            logger.warning("delayed message %s waits: %s", message_id, exc)
            nak = f'-NAK {{"delay":{int(FULL_QUEUE_RETRY * 1e9)}}}'.encode()
            await connection.send(msg.reply, nak, None)
            return
        except PaigeantError as exc:
            logger.warning(
                "could not promote delayed message %s to %s: %s", message_id, target, exc
            )
            return  # it comes back after the promoter's ack_wait
        await connection.confirm(msg.reply, b"+ACK")

    async def _reject(
        self, msg: Msg, target: str, foreign: ForeignMessage, source: Metadata
    ) -> None:
        """A damaged (or undeliverable) delayed message goes to its target queue's dead letters."""
        message_id = foreign.message_id or f"nats:{source.stream}:{source.stream_seq}"
        kept = {k: v for k, v in (msg.headers or {}).items() if not k.startswith("Nats-")}
        await park(
            self.transport,
            target,
            msg.data,
            message_id=message_id,
            headers=kept,
            reason=foreign.reason,
            attempt=0,
            source=source,
        )
        await self.transport.connection.confirm(msg.reply, b"+ACK")
        logger.warning(
            "dead-lettered delayed message %s for %s: %s", message_id, target, foreign.reason
        )
