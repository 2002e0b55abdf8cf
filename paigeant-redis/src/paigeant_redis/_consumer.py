"""One consume() loop: a consumer in the queue's group, its leases, reclaims and delayed moves."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import random
import socket
import time
import uuid
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from paigeant import dead_letter_queue, too_many_deliveries

from ._codec import decode_entry, parse_xread, text
from ._errors import is_missing_group, is_retryable
from ._keys import CONSUMER_GROUP
from .delivery import RedisDelivery, dead_letter_entry

if TYPE_CHECKING:
    from .transport import RedisTransport

__all__ = ["ConsumeLoop", "consumer_name"]

logger = logging.getLogger(__name__)

#: Longest single XREADGROUP BLOCK, so a loop regularly promotes, reclaims and notices changes.
MAX_BLOCK_SECONDS = 5.0
#: Delayed messages moved into the stream per script call.
PROMOTE_LIMIT = 100
#: Idle time given to released entries so any consumer's next reclaim takes them at once.
RELEASED_IDLE_MS = 1_000_000_000
#: How often a loop deletes consumers of its group that hold nothing and have long been idle.
PRUNE_INTERVAL_SECONDS = 600.0
PRUNE_IDLE_MS = 3_600_000


def consumer_name() -> str:
    """A consumer name unique to one consume() loop: ``hostname-pid-random``."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:12]}"


class ConsumeLoop:
    """State and steps of one consume() loop; the transport's generator drives it."""

    def __init__(self, transport: RedisTransport, client: Redis, queue: str, prefetch: int) -> None:
        """Join ``queue``'s consumer group as a new, uniquely named consumer."""
        self.transport = transport
        self.client = client
        #: This loop's own connection: its reads and scripts skip the pool's per-command cost.
        self.connection = transport.own_connection()
        self.queue = queue
        self.prefetch = prefetch
        self.name = consumer_name()
        keys = transport.keys
        self.stream = keys.stream(queue)
        self.dead_letter_stream = keys.stream(dead_letter_queue(queue))
        #: The stream, delayed set, delayed data, dead-letter stream and wake set, as the
        #: scripts take them.
        self.script_keys = [
            self.stream,
            keys.delayed(queue),
            keys.delayed_data(queue),
            self.dead_letter_stream,
            keys.wake(queue),
        ]
        self.held: dict[str, RedisDelivery] = {}
        self.abandoned: set[str] = set()  # handed out, settling failed: still delivered
        self._capacity = asyncio.Event()
        self._markers: list[str] = []
        self._cursor = "0-0"
        self._next_due: float | None = None
        self._next_reclaim = 0.0
        self._next_prune = 0.0
        self._fresh = True
        self._needs_group = True
        self._group_warned = False
        self._resume = False
        self._failures = 0
        self._read_task: asyncio.Future[Any] | None = None
        self._stopping = False
        #: Why this loop gave back what it held (None while it runs): its deliveries' leases
        #: are gone from then on.
        self.released_because: str | None = None
        #: Whether the consume() loop closed while deliveries it handed out were unsettled.
        self.retired = False
        self._release_failed = False

    # -- liveness and errors ----------------------------------------------------------------

    @property
    def alive(self) -> bool:
        """Whether the transport is still connected with the client this loop started on."""
        return not self._stopping and self.transport.current_client() is self.client

    async def _recover(self, exc: BaseException) -> None:
        """React to a failed round: recreate a missing group, or back off after an outage."""
        self._needs_group = True
        if isinstance(exc, ResponseError) and is_missing_group(exc):
            self._group_warned = True
            logger.warning(
                "consumer group of queue %s is missing (Redis restarted empty or the key was "
                "deleted): recreating it",
                self.queue,
            )
            return
        self._failures += 1
        if self._failures == 1:
            logger.warning(
                "Redis at %s unavailable while consuming %s (%s: %s); retrying",
                self.transport.safe_url,
                self.queue,
                type(exc).__name__,
                exc,
            )
        self._resume = True
        backoff = min(2.0, 0.05 * 2 ** min(self._failures, 10)) * (0.5 + random.random())
        await asyncio.sleep(backoff)

    def _recovered(self) -> None:
        if self._failures:
            logger.warning(
                "Redis at %s reachable again; consuming %s", self.transport.safe_url, self.queue
            )
            self._failures = 0

    # -- the loop ----------------------------------------------------------------------------

    async def next_batch(self) -> list[RedisDelivery] | None:
        """Return the next deliveries (at most the free prefetch), or None once disconnected."""
        while self.alive:
            try:
                batch = await self._round()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not self.alive:
                    return None
                if not (
                    is_retryable(exc) or (isinstance(exc, ResponseError) and is_missing_group(exc))
                ):
                    raise
                await self._recover(exc)
                continue
            self._recovered()
            if batch:
                return batch
        return None

    def hold(self, delivery: RedisDelivery) -> None:
        """Count ``delivery`` as handed out (against prefetch, and for release on close)."""
        self.held[delivery.entry_id] = delivery

    async def _round(self) -> list[RedisDelivery]:
        if self._needs_group:
            # From the stream's start, so messages published before any consumer are kept.
            created = await self.transport.ensure_group(self.connection, self.stream)
            if created and not self._fresh and not self._group_warned:
                logger.warning(
                    "consumer group of queue %s was missing after reconnecting (Redis restarted "
                    "empty?): recreated it",
                    self.queue,
                )
            self._needs_group = self._group_warned = False
        now = time.monotonic()
        want = self.prefetch - len(self.held)
        if want <= 0:
            self._capacity.clear()
            deadline = self._next_due if self._next_due is not None else now + MAX_BLOCK_SECONDS
            if deadline > now:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._capacity.wait(), deadline - now)
                return []
            await self._prepare(0, now)  # promote due messages for other consumers
            return []
        if self._needs_prepare(now):
            batch = await self._prepare(want, now)
            if batch:
                return batch
            now = time.monotonic()
        return await self._read(want, self._block_ms(now))

    def _needs_prepare(self, now: float) -> bool:
        return (
            self._fresh
            or self._resume
            or bool(self._markers)
            or now >= self._next_reclaim
            or (self._next_due is not None and now >= self._next_due)
        )

    def _block_ms(self, now: float) -> int:
        deadline = min(self._next_reclaim, now + MAX_BLOCK_SECONDS)
        if self._next_due is not None:
            deadline = min(deadline, self._next_due)
        return max(1, math.ceil((deadline - now) * 1000))

    def _reclaim_interval(self) -> float:
        return max(0.05, float(self.transport.visibility_timeout) / 2)

    async def _prepare(self, want: int, now: float) -> list[RedisDelivery]:
        """Drop markers, resume or reclaim entries, and promote due delayed messages."""
        reclaim = want > 0 and now >= self._next_reclaim
        # Own entries never handed out (a reply lost with its connection) are resumed on every
        # reclaim pass and right after an outage, keeping their delivery count.
        resume = want > 0 and (self._resume or reclaim)
        markers = list(self._markers)
        delivered = self._delivered_ids()
        transport = self.transport
        reply = await transport.scripts_for(self.client).prepare(
            self.script_keys,
            [
                CONSUMER_GROUP,
                self.name,
                max(1, int(transport.visibility_timeout * 1000)),
                want,
                int(transport.max_deliveries),
                self.queue,
                int(reclaim),
                self._cursor,
                int(resume),
                PROMOTE_LIMIT,
                len(delivered),
                *delivered,
                *markers,
            ],
            self.connection,
        )
        next_due_ms, cursor, entries, dead = reply
        del self._markers[: len(markers)]
        self._fresh = False
        if resume:
            self._resume = False
        if reclaim:
            self._cursor = text(cursor)
            self._next_reclaim = now + self._reclaim_interval()
        next_due_ms = int(next_due_ms)
        self._next_due = None if next_due_ms < 0 else time.monotonic() + next_due_ms / 1000
        if now >= self._next_prune:
            self._next_prune = now + PRUNE_INTERVAL_SECONDS
            await self._prune()
        batch = []
        for entry_id, count, flat in entries:
            fields = dict(zip(flat[::2], flat[1::2], strict=True))
            body, message_id, headers, base = decode_entry(text(entry_id), fields)
            batch.append(
                self._delivery(text(entry_id), body, message_id, headers, base, int(count))
            )
        for message_id in dead:
            logger.warning(
                "dead-lettered message %s from %s: redelivered past max_deliveries=%s",
                text(message_id),
                self.queue,
                transport.max_deliveries,
            )
        if batch and reclaim:
            logger.info(
                "reclaimed %d entries of %s whose consumer stopped or whose lease expired",
                len(batch),
                self.queue,
            )
        return batch

    async def _prune(self) -> None:
        try:
            removed = await self.transport.scripts_for(self.client).prune(
                [self.stream], [CONSUMER_GROUP, PRUNE_IDLE_MS, self.name], self.connection
            )
        except Exception as exc:  # housekeeping only
            logger.debug("pruning idle consumers of %s failed: %s", self.queue, exc)
            return
        if removed:
            logger.info("removed %s idle consumers of %s", removed, self.queue)

    async def _read(self, want: int, block_ms: int) -> list[RedisDelivery]:
        """XREADGROUP new entries, blocking at most ``block_ms``; markers are noted, not returned."""
        task = asyncio.ensure_future(self._xreadgroup(want, block_ms))
        self._read_task = task
        try:
            response = await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if (
                self._stopping
                and task.cancelled()
                and (current is None or not current.cancelling())
            ):
                return []
            raise
        finally:
            self._read_task = None
        batch = []
        for entry_id, fields in parse_xread(response):
            if b"wake" in fields:
                self._markers.append(entry_id)
                continue
            body, message_id, headers, base = decode_entry(entry_id, fields)
            attempt = base + 1
            if attempt > self.transport.max_deliveries:
                reason = too_many_deliveries(attempt - 1, self.transport.max_deliveries)
                if await dead_letter_entry(self, entry_id, reason, attempt=attempt - 1, count=1):
                    logger.warning(
                        "dead-lettered message %s from %s: %s", message_id, self.queue, reason
                    )
                continue
            batch.append(self._delivery(entry_id, body, message_id, headers, base, 1))
        return batch

    async def _xreadgroup(self, want: int, block_ms: int) -> Any:
        """XREADGROUP up to ``want`` new entries, blocking at most ``block_ms``.

        redis-py's ``xreadgroup`` returns a coroutine wrapping another one; it is only created
        once this one runs, so a read task cancelled before it started (stop() right after the
        read began) leaves no never-awaited coroutine behind (a RuntimeWarning).
        """
        return await self.connection.xreadgroup(
            CONSUMER_GROUP, self.name, {self.stream: ">"}, count=want, block=block_ms
        )

    def _delivery(
        self,
        entry_id: str,
        body: bytes,
        message_id: str,
        headers: dict[str, str],
        base: int,
        count: int,
    ) -> RedisDelivery:
        return RedisDelivery(
            self,
            entry_id,
            body=body,
            message_id=message_id,
            headers=headers,
            attempt=base + count,
            count=count,
        )

    def _delivered_ids(self) -> list[str]:
        return [*self.held, *self.abandoned]

    # -- settlement --------------------------------------------------------------------------

    async def settle(self, delivery: RedisDelivery, operation: Awaitable[None]) -> None:
        """Run a settling ``operation``; the delivery stops counting against prefetch."""
        try:
            await operation
        except BaseException:
            if self._unhold(delivery):
                self.abandoned.add(delivery.entry_id)
            raise
        else:
            self._unhold(delivery)
            self.abandoned.discard(delivery.entry_id)
        finally:
            self._capacity.set()
            self._forget_if_done()

    @property
    def holds_anything(self) -> bool:
        """Whether entries it handed out are unsettled (held, or a settle of them failed)."""
        return bool(self.held or self.abandoned)

    def lost(self, delivery: RedisDelivery) -> None:
        """``delivery``'s lease was lost (another consumer took the entry): it is not held."""
        self._unhold(delivery)
        self._forget_if_done()

    def _forget_if_done(self) -> None:
        if self.retired and not self.holds_anything:
            self.transport.forget_retired(self)

    def _unhold(self, delivery: RedisDelivery) -> bool:
        # A lease that expired may have been reclaimed by this same loop: only the latest
        # delivery of an entry holds it.
        if self.held.get(delivery.entry_id) is delivery:
            del self.held[delivery.entry_id]
            return True
        return False

    # -- shutdown ----------------------------------------------------------------------------

    async def stop(self) -> None:
        """Interrupt a blocked read so the loop ends (used by disconnect)."""
        self._stopping = True
        self._capacity.set()
        task = self._read_task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task})

    async def close(self) -> None:
        """Give this loop's own connection back (a no-op once the transport disconnected)."""
        await self.transport.close_own_connection(self.connection)

    @property
    def released(self) -> bool:
        """Whether ``release()`` gave back what this loop held (its leases are gone)."""
        return self.released_because is not None

    @property
    def lease_gone(self) -> str | None:
        """Why this loop's deliveries no longer hold their leases, or None while they may."""
        because = self.released_because
        if because is None:
            if self.alive:
                return None
            because = "the transport disconnected"  # disconnect() is releasing the loop
        if self._release_failed:
            return f"{because}; the message is redelivered once visibility_timeout runs out"
        return f"{because} and the message was released for redelivery"

    async def release(self, client: Redis, *, because: str) -> None:
        """Make everything this loop holds claimable at once by the queue's other consumers.

        ``because`` (say, "the transport disconnected") is what a later ``extend()`` reports.
        """
        if self.released:
            return
        self.released_because = because
        await self._release(client, kept=[])

    async def retire(self, client: Redis) -> None:
        """The consume() loop closed: give back what it never handed out, keep what it did.

        Deliveries handed out and not settled keep their leases: their holder (a worker
        draining its steps) may still extend and settle them; unsettled, they come back once
        their lease runs out, or at once when the transport disconnects.
        """
        self.retired = True
        if not self.released:
            await self._release(client, kept=list(self.held))

    async def _release(self, client: Redis, *, kept: list[str]) -> None:
        delivered = self._delivered_ids()
        try:
            released = await self.transport.scripts_for(client).release(
                [self.stream, self.transport.keys.wake(self.queue)],
                [CONSUMER_GROUP, self.name, RELEASED_IDLE_MS, len(kept), *kept, *delivered],
            )
        except Exception as exc:
            logger.warning(
                "could not release the entries of %s held by %s (%s); they are redelivered "
                "after visibility_timeout",
                self.queue,
                self.name,
                exc,
            )
            self._release_failed = True
            return
        if released:
            logger.debug("released %s entries of %s held by %s", released, self.queue, self.name)
