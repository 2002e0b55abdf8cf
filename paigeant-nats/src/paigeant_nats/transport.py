"""NatsTransport: paigeant's Transport over NATS JetStream work-queue streams."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import time
from collections.abc import AsyncIterator, Mapping
from typing import ClassVar

from nats.js import JetStreamManager

from paigeant import Delivery, PaigeantError, QueueStats, Transport, redact_url

from ._codec import DEAD_LETTER_ROOM, check_size, encode
from ._connection import Connection
from ._consumer import ConsumeLoop
from ._errors import NoStreamError, PublishRefusedError, read_pub_ack
from ._names import Names, validate_prefix, validate_queue
from ._promoter import Promoter
from ._streams import Streams, StreamSettings

__all__ = ["DEFAULT_PREFIX", "DEFAULT_PUBLISH_TIMEOUT", "DEFAULT_URL", "NatsTransport"]

logger = logging.getLogger(__name__)

#: Used when neither ``url=`` nor ``PAIGEANT_NATS_URL`` is given.
DEFAULT_URL = "nats://127.0.0.1:4222"
#: Used when neither ``prefix=`` nor ``PAIGEANT_NATS_PREFIX`` is given.
DEFAULT_PREFIX = "paigeant"
#: Seconds ``publish`` (and each settle) waits for the server's reply before it raises.
DEFAULT_PUBLISH_TIMEOUT = 5.0
_NOT_CONNECTED = "transport is not connected: call `await transport.connect()` first"
_DRAIN_SECONDS = 2.0
#: Pauses between publishes a stream being created answered with "no responders".
_NO_STREAM_FIRST_PAUSE = 0.005
_NO_STREAM_MAX_PAUSE = 0.25


class NatsTransport(Transport):
    """Queues as JetStream work-queue streams, one durable pull consumer each; durable delays."""

    crosses_processes: ClassVar[bool] = True

    def __init__(
        self,
        *,
        url: str | None = None,
        prefix: str | None = None,
        visibility_timeout: float = 30.0,
        max_deliveries: int = 10,
        duplicate_window: float = 600.0,
        max_queue_messages: int = 1_000_000,
        max_queue_bytes: int | None = None,
        replicas: int = 1,
        publish_timeout: float = DEFAULT_PUBLISH_TIMEOUT,
        connect_timeout: float = 2.0,
        connect_attempts: int = 3,
    ) -> None:
        """Configure the transport; nothing connects until ``connect()``.

        Args:
            url: NATS URL; else ``PAIGEANT_NATS_URL``, else ``nats://127.0.0.1:4222``.
            prefix: First subject token and stream-name prefix; else ``PAIGEANT_NATS_PREFIX``,
                else ``paigeant``. Give each application (or test run) its own.
            visibility_timeout: Seconds a delivery stays leased without ``extend()`` (the
                consumers' ``ack_wait``).
            max_deliveries: Deliveries after which the transport dead-letters a message.
            duplicate_window: Seconds JetStream remembers a forwarded message id, so a repeated
                forward is dropped; it should cover a step's worst redelivery time.
            max_queue_messages: Most messages one queue's stream holds; then publishes are
                refused (QueueFullError), never is work deleted.
            max_queue_bytes: Most bytes one queue's stream holds, likewise; None (the default)
                sets none. NATS reserves a stream's whole ``max_bytes`` of its storage when it
                creates the stream, so a limit here caps how many streams a server holds; a
                server out of storage refuses publishes either way.
            replicas: Stream replicas in a JetStream cluster (1, 3 or 5).
            publish_timeout: Longest ``publish`` (and each settle) waits for JetStream's reply
                before it raises TransportConnectionError.
            connect_timeout: Seconds per connection attempt of ``connect()``.
            connect_attempts: Attempts ``connect()`` makes before it raises
                TransportConnectionError; once connected, reconnects never stop.
        """
        self.url = url or os.environ.get("PAIGEANT_NATS_URL", "").strip() or DEFAULT_URL
        if not self.url.startswith(("nats://", "tls://", "ws://", "wss://")):
            raise ValueError(
                f"unsupported NATS URL {redact_url(self.url)!r}: use nats://, tls://, ws:// or wss://"
            )
        prefix = prefix or os.environ.get("PAIGEANT_NATS_PREFIX", "").strip() or DEFAULT_PREFIX
        for name, value in (
            ("visibility_timeout", visibility_timeout),
            ("publish_timeout", publish_timeout),
            ("connect_timeout", connect_timeout),
        ):
            if value <= 0:
                raise ValueError(f"{name} must be positive")
        if max_deliveries < 1:
            raise ValueError("max_deliveries must be at least 1")
        if duplicate_window < 0.1:
            raise ValueError("duplicate_window must be at least 0.1 s (JetStream's minimum)")
        if connect_attempts < 1:
            raise ValueError("connect_attempts must be at least 1")
        if max_queue_bytes is not None and max_queue_bytes < 1:
            raise ValueError("max_queue_bytes must be at least 1 (or None for no byte limit)")
        if replicas not in (1, 3, 5):
            raise ValueError("replicas must be 1, 3 or 5")
        self.visibility_timeout = float(visibility_timeout)
        self.max_deliveries = int(max_deliveries)
        self.names = Names(validate_prefix(prefix))
        self.publish_timeout = float(publish_timeout)
        self.connect_timeout = float(connect_timeout)
        self.connect_attempts = int(connect_attempts)
        self.streams = Streams(
            self.names,
            StreamSettings(
                max_messages=int(max_queue_messages),
                max_bytes=-1 if max_queue_bytes is None else int(max_queue_bytes),
                duplicate_window=float(duplicate_window),
                replicas=int(replicas),
            ),
            self._manager,
        )
        #: Bumped on every new client (not on reconnects of one client).
        self.generation = 0
        self._connection: Connection | None = None
        self._loops: set[ConsumeLoop] = set()
        self._promoter: Promoter | None = None
        self._lock = asyncio.Lock()
        self._valid_queues: set[str] = set()
        self._reopening: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"NatsTransport(url={self.safe_url!r}, prefix={self.names.prefix!r})"

    @property
    def safe_url(self) -> str:
        """The URL with any credentials hidden."""
        return redact_url(self.url)

    @property
    def connection(self) -> Connection:
        """The open connection; RuntimeError while disconnected."""
        if self._connection is None:
            raise RuntimeError(_NOT_CONNECTED)
        return self._connection

    def _manager(self) -> JetStreamManager:
        return self.connection.client.jsm(timeout=self.publish_timeout)

    # -- connection --------------------------------------------------------------------------

    async def connect(self) -> None:
        """Connect and check JetStream; TransportConnectionError within a bounded time if not.

        At most ``connect_attempts`` tries of ``connect_timeout`` seconds each.
        """
        async with self._lock:
            if self._connection is None:
                self._warn_if_the_window_is_short()
                self._connection = await self._open()

    def _warn_if_the_window_is_short(self) -> None:
        window = self.streams.settings.duplicate_window
        if window < self.visibility_timeout:
            logger.warning(
                "duplicate_window=%ss is shorter than visibility_timeout=%ss: a step redelivered "
                "after its lease ran out forwards its next hop again after JetStream forgot the "
                "first one, so the next step runs twice; set duplicate_window to at least a "
                "step's duration plus visibility_timeout",
                window,
                self.visibility_timeout,
            )

    async def _open(self) -> Connection:
        connection = Connection(
            self.url,
            connect_timeout=self.connect_timeout,
            connect_attempts=self.connect_attempts,
            request_timeout=self.publish_timeout,
            on_reconnected=self._reconnected,
            on_closed=self._closed,
        )
        await connection.open()
        self.generation += 1
        return connection

    async def disconnect(self) -> None:
        """End consume loops, give back what they hold (redelivered at once), close.

        Replies already on their way (acks, PubAcks) are waited for, briefly.
        """
        async with self._lock:
            connection = self._connection
            if connection is None:
                return
            if self._reopening is not None:
                self._reopening.cancel()
                self._reopening = None
            promoter, self._promoter = self._promoter, None
            if promoter is not None:
                await promoter.stop()
            loops = list(self._loops)
            for loop in loops:
                loop.stop()
            for loop in loops:
                await loop.close(release_held=True)
            await connection.replies.wait_idle(_DRAIN_SECONDS)
            self._connection = None
            await connection.close()
            logger.debug("disconnected from NATS at %s", self.safe_url)

    async def _reconnected(self) -> None:
        for loop in list(self._loops):
            loop.on_reconnected()
        if self._promoter is not None:
            self._promoter.on_reconnected()

    async def _closed(self) -> None:
        """nats-py gave up on its client: open a new one in the background."""
        if self._reopening is None or self._reopening.done():
            self._reopening = asyncio.ensure_future(self._reopen())

    async def _reopen(self) -> None:
        failures = 0
        while self._connection is not None:
            try:
                fresh = await self._open()
            except PaigeantError as exc:  # unreachable, or JetStream turned off meanwhile
                failures += 1
                logger.warning("reopening the NATS connection failed (%s); retrying", exc)
                await asyncio.sleep(min(5.0, 0.5 * failures))
                continue
            old, self._connection = self._connection, fresh
            await old.close()
            await self._reconnected()  # loops and promoter move to the new client
            return

    # -- publishing --------------------------------------------------------------------------

    def _queue(self, queue: str) -> str:
        if queue not in self._valid_queues:
            validate_queue(queue)
            self._valid_queues.add(queue)
        return queue

    async def publish(
        self,
        queue: str,
        body: bytes,
        *,
        message_id: str,
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
        deduplicate: bool = False,
    ) -> None:
        """Publish to ``queue``'s stream and wait for the PubAck (or park it for ``delay``).

        ``deduplicate=True`` (what ``ack(forward=...)`` uses) sets ``Nats-Msg-Id`` to
        ``message_id``, so JetStream drops a repeat within ``duplicate_window``; a plain
        publish is never dropped (a replayed dead letter keeps its id). Raises
        MessageTooLargeError when the message with its headers exceeds the server's
        ``max_payload`` less ``DEAD_LETTER_ROOM`` (4 KiB kept for a dead letter's headers),
        QueueFullError when the stream is full, TransportConnectionError after
        ``publish_timeout`` without a reply.
        """
        self._queue(queue)
        dedup_id = message_id if deduplicate else None
        # Room for what a dead letter adds: a message published here is never too large to park.
        if delay > 0:
            await self.store_delayed(
                queue,
                body,
                message_id=message_id,
                headers=headers,
                delay=delay,
                dedup_id=dedup_id,
                reserve=DEAD_LETTER_ROOM,
            )
            return
        nats_headers = encode(message_id, headers, dedup_id=dedup_id)
        await self.store(
            queue, body, nats_headers, what=f"cannot publish to {queue!r}", reserve=DEAD_LETTER_ROOM
        )

    async def store(
        self,
        queue: str,
        body: bytes,
        nats_headers: Mapping[str, str],
        *,
        what: str,
        reserve: int = 0,
    ) -> bool:
        """Publish to ``queue``'s subject and await the PubAck; create the stream if missing.

        The message must fit ``max_payload`` less ``reserve`` bytes. Returns whether JetStream
        deduplicated it.
        """
        return await self._store(
            queue,
            self.names.subject(queue),
            body,
            nats_headers,
            what,
            delayed=False,
            reserve=reserve,
        )

    async def store_delayed(
        self,
        queue: str,
        body: bytes,
        *,
        message_id: str,
        headers: Mapping[str, str] | None,
        delay: float,
        attempt_base: int = 0,
        dedup_id: str | None = None,
        reserve: int = 0,
    ) -> None:
        """Publish to the delay stream, due for ``queue`` in ``delay`` seconds (within
        ``max_payload`` less ``reserve`` bytes)."""
        due_ms = math.ceil((time.time() + delay) * 1000)
        nats_headers = encode(
            message_id, headers, attempt_base=attempt_base, due_ms=due_ms, dedup_id=dedup_id
        )
        await self._store(
            queue,
            self.names.delay_subject(queue),
            body,
            nats_headers,
            f"cannot publish to {queue!r} with a delay",
            delayed=True,
            reserve=reserve,
        )

    async def _store(
        self,
        queue: str,
        subject: str,
        body: bytes,
        nats_headers: Mapping[str, str],
        what: str,
        *,
        delayed: bool,
        reserve: int,
    ) -> bool:
        connection = self.connection
        check_size(body, nats_headers, connection.max_payload, queue, reserve=reserve)
        deadline: float | None = None
        pause = _NO_STREAM_FIRST_PAUSE
        while True:
            reply = await connection.request(subject, body, nats_headers, what)
            try:
                return read_pub_ack(reply, what)
            except NoStreamError:
                # "No responders" means nothing stored it, so publishing again is safe. The
                # stream may be one another process is still creating: JetStream (2.9) answers
                # a concurrent identical create before the stream subscribes to its subject.
                now = time.monotonic()
                if deadline is None:
                    deadline = now + self.publish_timeout
                elif now >= deadline:
                    raise PublishRefusedError(
                        f"{what}: no stream captures {subject} even after creating it "
                        f"(NATS kept answering 'no responders' for {self.publish_timeout}s)"
                    ) from None
                else:
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, _NO_STREAM_MAX_PAUSE)
            if delayed:
                await self.streams.ensure_promoter()
            else:
                await self.streams.ensure_queue(queue)

    # -- consuming ---------------------------------------------------------------------------

    async def consume(self, queue: str, *, prefetch: int = 16) -> AsyncIterator[Delivery]:
        """Yield deliveries of ``queue`` through its shared durable consumer.

        Also runs this transport's promoter (delayed messages) while any loop consumes.
        """
        self.connection  # noqa: B018 - raises when not connected
        self._queue(queue)
        if prefetch < 1:
            raise ValueError("prefetch must be at least 1")
        loop = ConsumeLoop(self, queue, prefetch)
        self._loops.add(loop)
        if self._promoter is None:
            self._promoter = Promoter(self)
            self._promoter.start()
        try:
            while True:
                delivery = await loop.next()
                if delivery is None:
                    return
                yield delivery
        finally:
            self._loops.discard(loop)
            if not loop.stopping:
                with contextlib.suppress(Exception):
                    await loop.close(release_held=False)

    async def delete_queue(self, queue: str) -> None:
        """Delete ``queue``'s stream and its delayed messages; its dead letters are kept."""
        self.connection  # noqa: B018 - raises when not connected
        self._queue(queue)
        await self.streams.delete_queue(queue)
        for loop in list(self._loops):
            if loop.queue == queue:
                for delivery in loop.held:
                    delivery.released = True

    async def stats(self, queue: str) -> QueueStats:
        """Counts from stream and consumer info (see docs/transports/nats.md for how exact)."""
        self.connection  # noqa: B018 - raises when not connected
        return await self.streams.stats(self._queue(queue))
