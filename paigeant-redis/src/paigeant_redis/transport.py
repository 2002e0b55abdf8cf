"""RedisTransport: paigeant's Transport over Redis Streams with consumer groups."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError, ResponseError

from paigeant import (
    BrowsedMessage,
    Delivery,
    QueueStats,
    Transport,
    TransportConnectionError,
    dead_letter_queue,
    redact_url,
)

from ._acks import AckBatcher
from ._codec import decode_entry, delay_ms, encode_headers, text
from ._consumer import ConsumeLoop
from ._errors import CONNECTION_ERRORS
from ._keys import CONSUMER_GROUP, KeySpace
from ._scripts import Scripts

__all__ = ["DEFAULT_KEY_PREFIX", "DEFAULT_PUBLISH_TIMEOUT", "DEFAULT_URL", "RedisTransport"]

logger = logging.getLogger(__name__)

#: Used when neither ``url=`` nor ``PAIGEANT_REDIS_URL`` is given.
DEFAULT_URL = "redis://127.0.0.1:6379/0"
#: Used when neither ``key_prefix=`` nor ``PAIGEANT_REDIS_KEY_PREFIX`` is given.
DEFAULT_KEY_PREFIX = "paigeant"
#: Seconds ``publish`` (and each settle) may take before TransportConnectionError.
DEFAULT_PUBLISH_TIMEOUT = 10.0
_SCHEMES = ("redis", "rediss", "unix")
_NOT_CONNECTED = "transport is not connected: call `await transport.connect()` first"


_KEEPALIVE: dict[int, int | bytes] = {
    option: value
    for option, value in (
        (getattr(socket, "TCP_KEEPIDLE", None), 10),
        (getattr(socket, "TCP_KEEPINTVL", None), 5),
        (getattr(socket, "TCP_KEEPCNT", None), 3),
    )
    if option is not None
}


class RedisTransport(Transport):
    """Queues as Redis streams: consumer-group leases, XAUTOCLAIM recovery, Lua-atomic settles."""

    crosses_processes: ClassVar[bool] = True

    def __init__(
        self,
        *,
        url: str | None = None,
        visibility_timeout: float = 30.0,
        max_deliveries: int = 10,
        key_prefix: str | None = None,
        dedup_ttl: float = 86_400.0,
        max_connections: int = 64,
        connect_timeout: float = 5.0,
        publish_timeout: float = DEFAULT_PUBLISH_TIMEOUT,
        client_name: str | None = "paigeant",
    ) -> None:
        """Configure the transport; nothing connects until ``connect()``.

        Args:
            url: Redis URL; else ``PAIGEANT_REDIS_URL``, else ``redis://127.0.0.1:6379/0``.
            visibility_timeout: Seconds a delivery stays leased without ``extend()`` before
                another consumer reclaims it.
            max_deliveries: Deliveries after which a message is dead-lettered.
            key_prefix: Prefix of every key; else ``PAIGEANT_REDIS_KEY_PREFIX``, else
                ``paigeant``.
            dedup_ttl: Seconds a forwarded message id is remembered, so a repeated forward
                with the same id is skipped; 0 turns forward deduplication off.
            max_connections: Size of the pool shared by publishing and settling. Consume
                loops and the ack batcher each hold a connection of their own besides.
            connect_timeout: Seconds to wait for a TCP connection to Redis.
            publish_timeout: Longest ``publish`` waits, retries included, before it raises
                TransportConnectionError (Redis down, unreachable or not answering); also
                bounds each ``ack``, ``nack``, ``dead_letter`` and ``extend``.
            client_name: Name set on each connection (CLIENT SETNAME), shown by CLIENT LIST.
        """
        self.url = url or os.environ.get("PAIGEANT_REDIS_URL", "").strip() or DEFAULT_URL
        scheme = urlsplit(self.url).scheme
        if scheme not in _SCHEMES:
            raise ValueError(
                f"unsupported Redis URL {redact_url(self.url)!r}: use redis://, rediss:// or unix://"
            )
        if visibility_timeout <= 0:
            raise ValueError("visibility_timeout must be positive")
        if max_deliveries < 1:
            raise ValueError("max_deliveries must be at least 1")
        if dedup_ttl < 0:
            raise ValueError("dedup_ttl must not be negative")
        if max_connections < 2:
            raise ValueError("max_connections must be at least 2")
        if publish_timeout <= 0:
            raise ValueError("publish_timeout must be positive")
        self.visibility_timeout = float(visibility_timeout)
        self.max_deliveries = int(max_deliveries)
        prefix = key_prefix or os.environ.get("PAIGEANT_REDIS_KEY_PREFIX", "").strip()
        self.keys = KeySpace(prefix or DEFAULT_KEY_PREFIX)
        self.dedup_ttl = float(dedup_ttl)
        self.max_connections = int(max_connections)
        self.connect_timeout = float(connect_timeout)
        self.publish_timeout = float(publish_timeout)
        self.client_name = client_name
        self._client: Redis | None = None
        self._scripts: Scripts | None = None
        self._own_pool: ConnectionPool | None = None
        self._loops: set[ConsumeLoop] = set()
        #: Closed consume() loops whose handed-out deliveries are still being worked on.
        self._retired: set[ConsumeLoop] = set()
        self._connecting = asyncio.Lock()
        #: Acks (with their forwards) waiting for, or on, the wire.
        self.acks = AckBatcher(self)

    def __repr__(self) -> str:
        return f"RedisTransport(url={self.safe_url!r}, key_prefix={self.keys.prefix!r})"

    @property
    def safe_url(self) -> str:
        """The Redis URL with any password hidden."""
        return redact_url(self.url)

    @property
    def dedup_ttl_ms(self) -> int:
        """``dedup_ttl`` in milliseconds."""
        return int(self.dedup_ttl * 1000)

    # -- connection --------------------------------------------------------------------------

    async def connect(self) -> None:
        """Open the connection pool and check Redis answers; TransportConnectionError if not."""
        async with self._connecting:
            if self._client is None:
                await self._connect()

    def _connection_options(self) -> dict[str, Any]:
        return {
            "socket_connect_timeout": self.connect_timeout,
            # No per-command socket timeout: redis-py would wrap every call in wait_for (a task
            # per command). A dead peer is detected by TCP keepalive within ~25 s instead.
            "socket_timeout": None,
            "socket_keepalive": True,
            "socket_keepalive_options": _KEEPALIVE,
            "health_check_interval": 30,
            "client_name": self.client_name,
            "retry": Retry(ExponentialBackoff(cap=1.0, base=0.05), 2),
        }

    async def _connect(self) -> None:
        options = self._connection_options()
        pool = BlockingConnectionPool.from_url(
            self.url, max_connections=self.max_connections, timeout=30, **options
        )
        client = Redis(connection_pool=pool)
        try:
            await client.ping()
        except (RedisError, OSError) as exc:
            await client.aclose(close_connection_pool=True)
            raise TransportConnectionError(
                f"cannot connect to Redis at {self.safe_url}: {exc}. Is redis-server running? "
                "Pass url=... or set PAIGEANT_REDIS_URL."
            ) from exc
        # Connections held for a lifetime (one per consume loop, one for acks) come from a pool
        # of their own, so they can never starve publishing and settling of the shared pool.
        self._own_pool = ConnectionPool.from_url(self.url, **options)
        self._scripts = Scripts(client)
        self._client = client
        self.acks.open()
        logger.debug("connected to Redis at %s", self.safe_url)

    def forget_retired(self, loop: ConsumeLoop) -> None:
        """A closed consume() loop's last handed-out delivery was settled: nothing to release."""
        self._retired.discard(loop)

    def own_connection(self) -> Redis:
        """A client bound to one connection of its own, outside ``max_connections``.

        For a caller that sends one command at a time for a long while (a consume loop, the
        ack batcher): it skips the shared pool's per-command cost. Close it with ``aclose()``.
        """
        if self._own_pool is None:
            raise RuntimeError(_NOT_CONNECTED)
        return Redis(connection_pool=self._own_pool, single_connection_client=True)

    async def close_own_connection(self, connection: Redis) -> None:
        """Close a client from ``own_connection()``; a no-op once the transport disconnected."""
        try:
            await connection.aclose()
        except Exception as exc:  # its pool may already be closed by disconnect()
            logger.debug("closing an own connection failed: %s", exc)

    async def disconnect(self) -> None:
        """Stop every consume() loop, release what they hold for redelivery, close the pools.

        Acks made before the call are sent first; an ack made once it has begun (or after it)
        raises TransportConnectionError and its message is redelivered. A concurrent connect()
        waits for it to end.
        """
        async with self._connecting:
            client = self._client
            if client is None:
                return
            await self.acks.close()  # refuses new acks, sends those already made
            self._client = None
            loops = [*self._loops, *self._retired]
            self._retired.clear()
            for loop in loops:
                await loop.stop()
            for loop in loops:
                await loop.release(client, because="the transport disconnected")
            self._scripts = None
            own_pool, self._own_pool = self._own_pool, None
            if own_pool is not None:
                await own_pool.aclose()
            await client.aclose(close_connection_pool=True)
            logger.debug("disconnected from Redis at %s", self.safe_url)

    def current_client(self) -> Redis | None:
        """The connected client, or None while disconnected."""
        return self._client

    def _connected_client(self) -> Redis:
        if self._client is None:
            raise RuntimeError(_NOT_CONNECTED)
        return self._client

    def scripts_for(self, client: Redis) -> Scripts:
        """The Lua scripts registered on ``client`` (a disconnected loop's client too)."""
        if client is self._client and self._scripts is not None:
            return self._scripts
        return Scripts(client)

    async def run_script(
        self,
        name: str,
        keys: list[str],
        args: list[str | int | bytes],
        *,
        connection: Redis | None = None,
    ) -> Any:
        """Run script ``name`` (on ``connection``, else the pool); outages raise TransportConnectionError."""
        client = self._connected_client()
        script = getattr(self.scripts_for(client), name)
        async with self._bounded(f"the {name} script"):
            return await script(keys, args, connection)

    @contextlib.asynccontextmanager
    async def _bounded(self, what: str) -> AsyncIterator[None]:
        """Turn outages and waits past ``publish_timeout`` into TransportConnectionError."""
        deadline = asyncio.timeout(self.publish_timeout)
        try:
            async with deadline:
                yield
        except TimeoutError as exc:
            if not deadline.expired():
                raise
            raise TransportConnectionError(
                f"{what}: no reply from Redis at {self.safe_url} within publish_timeout="
                f"{self.publish_timeout}s (it may or may not have been applied)"
            ) from exc
        except CONNECTION_ERRORS as exc:
            raise TransportConnectionError(
                f"{what}: Redis at {self.safe_url} unavailable ({type(exc).__name__}: {exc})"
            ) from exc

    async def ensure_group(self, client: Redis, stream: str) -> bool:
        """Create the queue's group from the stream's start (XGROUP CREATE MKSTREAM); True if new."""
        try:
            await client.xgroup_create(stream, CONSUMER_GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
            return False
        return True

    # -- publishing and consuming ------------------------------------------------------------

    async def publish(
        self,
        queue: str,
        body: bytes,
        *,
        message_id: str,
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
    ) -> None:
        """XADD the message (or park it in the delayed set); returns after Redis replies.

        Raises TransportConnectionError when Redis is unreachable or gives no reply within
        ``publish_timeout`` seconds (redis-py's brief retries included).
        """
        client = self._connected_client()
        headers_json = encode_headers(headers)
        async with self._bounded(f"cannot publish to {queue!r}"):
            if delay > 0:
                await self.scripts_for(client).publish_delayed(
                    [
                        self.keys.stream(queue),
                        self.keys.delayed(queue),
                        self.keys.delayed_data(queue),
                        self.keys.wake(queue),
                    ],
                    [message_id, bytes(body), headers_json, delay_ms(delay), uuid.uuid4().hex],
                )
            else:
                await client.xadd(
                    self.keys.stream(queue),
                    {
                        "message_id": message_id,
                        "body": bytes(body),
                        "headers": headers_json,
                        "attempt_base": 0,
                    },
                )

    async def consume(self, queue: str, *, prefetch: int = 16) -> AsyncIterator[Delivery]:
        """Yield deliveries of ``queue`` as one consumer of its group, ``prefetch`` at a time."""
        client = self._connected_client()
        if prefetch < 1:
            raise ValueError("prefetch must be at least 1")
        loop = ConsumeLoop(self, client, queue, prefetch)
        self._loops.add(loop)
        try:
            while True:
                batch = await loop.next_batch()
                if batch is None:
                    return
                for delivery in batch:
                    loop.hold(delivery)
                    yield delivery
        finally:
            # Retired before the loop leaves _loops: a disconnect() meanwhile must find it.
            self._retired.add(loop)
            self._loops.discard(loop)
            if loop.alive:
                await loop.retire(client)
            if not loop.alive:  # disconnect() ran meanwhile (or before): release everything
                await loop.release(client, because="the transport disconnected")
            if loop.released or not loop.holds_anything:
                self._retired.discard(loop)
            await loop.close()

    async def delete_queue(self, queue: str) -> None:
        """Delete the queue's stream, delayed messages, forward-dedup record and markers."""
        client = self._connected_client()
        await client.delete(*self.keys.queue_keys(queue))

    async def browse(self, queue: str, *, limit: int = 100) -> list[BrowsedMessage]:
        """The queue stream's messages, oldest first, read with XRANGE (nothing is claimed).

        Ready and in-flight entries (pending in the group) are shown, wake markers and delayed
        messages (still in the delayed set) are not. Dead letters (``dead_letter_queue(q)``)
        carry their ``DEAD_LETTER_*`` headers. Raises TransportConnectionError as ``publish``.
        """
        client = self._connected_client()
        if limit < 1:
            raise ValueError("limit must be at least 1")
        stream = self.keys.stream(queue)
        found: list[BrowsedMessage] = []
        start = "-"
        async with self._bounded(f"cannot browse {queue!r}"):
            while len(found) < limit:
                count = limit - len(found) + 1  # one more: a marker may take a place
                reply: Any = await client.xrange(stream, min=start, max="+", count=count)
                entries = [(text(entry_id), dict(fields or {})) for entry_id, fields in reply or []]
                for entry_id, fields in entries:
                    if b"wake" in fields:
                        continue
                    body, message_id, headers, _ = decode_entry(entry_id, fields)
                    found.append(BrowsedMessage(queue, message_id, body, headers))
                    if len(found) == limit:
                        break
                if len(entries) < count:
                    break
                start = f"({entries[-1][0]}"
        return found

    async def stats(self, queue: str) -> QueueStats:
        """Count ``queue``'s messages in one script, exact at the moment it runs.

        ``ready``: stream entries no consumer holds (stream length minus pending entries,
        wake markers left out); ``in_flight``: the group's pending entries (held by a consume
        loop, or by a dead one until its lease runs out and they are reclaimed); ``delayed``:
        the delayed set's size; ``dead``: everything in the dead-letter queue.
        """
        client = self._connected_client()
        keys = self.keys
        dead = dead_letter_queue(queue)
        async with self._bounded("stats"):
            ready, in_flight, delayed, dead_count = await self.scripts_for(client).stats(
                [
                    keys.stream(queue),
                    keys.delayed(queue),
                    keys.wake(queue),
                    keys.stream(dead),
                    keys.delayed(dead),
                    keys.wake(dead),
                ],
                [CONSUMER_GROUP],
            )
        return QueueStats(int(ready), int(in_flight), int(delayed), int(dead_count))
