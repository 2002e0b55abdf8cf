"""Dead letters of a queue: list, show and redrive them, on any transport, through its public API.

A transport offers no "peek", so reading a dead letter means consuming it. To leave the queue as
it was, every dead letter read is put back as a fresh message (same body and headers, a new
transport message id, its first id kept in ``DEAD_LETTER_ID_HEADER``), then the one read is
acknowledged: listing never raises a delivery count, so it never trips poison protection on the
dead-letter queue, and a broker that deduplicates by message id never drops the copy. A crash
between the two leaves a duplicate, never a loss.

Redriving publishes the message to its source queue (``DEAD_LETTER_QUEUE_HEADER``) without the
dead-letter headers, as a new message (attempt 1), then acknowledges the dead letter. The body and
its signature are unchanged, so the worker verifies it again: a tampered message stays rejected.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import re
import uuid
from collections.abc import AsyncIterator, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..transports.base import (
    DEAD_LETTER_ATTEMPT_HEADER,
    DEAD_LETTER_QUEUE_HEADER,
    DEAD_LETTER_REASON_HEADER,
    DEAD_LETTER_TIME_HEADER,
    Delivery,
    Transport,
)
from ..transports.queues import dead_letter_queue
from ..workflow.wire import CORRELATION_HEADER

__all__ = ["DEAD_LETTER_ID_HEADER", "DeadLetter", "DeadLetters"]

#: Header of a dead letter put back after reading: the message id it was dead-lettered with.
DEAD_LETTER_ID_HEADER = "x-paigeant-dead-letter-id"
_DEAD_LETTER_PREFIX = "x-paigeant-dead-letter-"
_REDRIVE_SUFFIX = re.compile(r"(\.redrive-[0-9a-f]{8})+$")
_REDACTED = "<redacted>"


@dataclass(frozen=True)
class DeadLetter:
    """One dead letter: its id, why and when it was parked, where from, and its content."""

    id: str
    queue: str
    source_queue: str
    reason: str
    attempt: int | None
    dead_lettered_at: str | None
    correlation_id: str | None
    headers: Mapping[str, str] = field(repr=False)
    body: bytes = field(repr=False)

    @classmethod
    def from_delivery(cls, delivery: Delivery, source_queue: str) -> DeadLetter:
        """Describe a delivery read from ``source_queue``'s dead-letter queue."""
        headers = dict(delivery.headers)
        attempt = headers.get(DEAD_LETTER_ATTEMPT_HEADER, "")
        return cls(
            id=headers.get(DEAD_LETTER_ID_HEADER) or delivery.message_id,
            queue=delivery.queue,
            source_queue=headers.get(DEAD_LETTER_QUEUE_HEADER) or source_queue,
            reason=headers.get(DEAD_LETTER_REASON_HEADER, "(no reason recorded)"),
            attempt=int(attempt) if attempt.isdigit() else None,
            dead_lettered_at=headers.get(DEAD_LETTER_TIME_HEADER),
            correlation_id=headers.get(CORRELATION_HEADER),
            headers=headers,
            body=delivery.body,
        )

    def content(self) -> Any:
        """The body for display: JSON with any on-behalf-of token redacted, else text."""
        try:
            value = json.loads(self.body)
        except ValueError:
            return self.body.decode("utf-8", errors="replace")
        return _redact(value)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description (the body redacted), for ``--json`` and the dashboard."""
        return {
            "id": self.id,
            "queue": self.queue,
            "source_queue": self.source_queue,
            "reason": self.reason,
            "attempt": self.attempt,
            "dead_lettered_at": self.dead_lettered_at,
            "correlation_id": self.correlation_id,
            "bytes": len(self.body),
            "headers": dict(self.headers),
            "body": self.content(),
        }


def _redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: _REDACTED if key == "obo_token" and item is not None else _redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_redact(item) for item in value]
    return value


class DeadLetters:
    """The dead letters of ``queue`` (an activity's or compensation's full queue name)."""

    def __init__(
        self, transport: Transport, queue: str, *, wait: float = 2.0, idle: float = 0.5
    ) -> None:
        """Read ``queue``'s dead letters on ``transport`` (connected by the caller).

        Args:
            wait: seconds to wait for the first dead letter when the transport has no stats.
            idle: seconds without a new dead letter after which the queue is taken as read.
        """
        self.transport = transport
        self.queue = queue
        self.dead_letter_queue = dead_letter_queue(queue)
        self.wait = wait
        self.idle = idle

    async def list(self, limit: int = 100) -> list[DeadLetter]:
        """Up to ``limit`` dead letters, oldest first; the queue is left as it was."""
        async with self._reading(limit) as held:
            return [DeadLetter.from_delivery(delivery, self.queue) for delivery in held]

    async def get(self, dead_letter_id: str, *, limit: int = 10_000) -> DeadLetter | None:
        """The dead letter with ``dead_letter_id``, or None."""
        for letter in await self.list(limit):
            if letter.id == dead_letter_id:
                return letter
        return None

    async def redrive(
        self, ids: Collection[str] | None = None, *, limit: int = 10_000
    ) -> builtins.list[DeadLetter]:
        """Republish the dead letters with ``ids`` (None: all, up to ``limit``) to their queues.

        Returns those redriven; ids not found are simply not in the result.
        """
        redriven: builtins.list[DeadLetter] = []
        async with self._reading(limit) as held:
            done: set[str] = set()
            for delivery in list(held):
                letter = DeadLetter.from_delivery(delivery, self.queue)
                if ids is not None and letter.id not in ids:
                    continue
                if letter.id not in done:  # a duplicate left by a crash is redriven once
                    await self.transport.publish(
                        letter.source_queue,
                        delivery.body,
                        message_id=_redrive_id(letter.id),
                        headers=_without_dead_letter_headers(delivery.headers),
                    )
                    done.add(letter.id)
                    redriven.append(letter)
                await delivery.ack()
                held.remove(delivery)
        return redriven

    # -- reading without losing anything ---------------------------------------------------

    def _reading(self, limit: int) -> _Reading:
        return _Reading(self, limit)

    async def _expected(self) -> int | None:
        """How many dead letters there are, when the transport can tell."""
        try:
            stats = await self.transport.stats(self.queue)
        except NotImplementedError:
            return None
        return stats.dead

    async def _read(self, iterator: AsyncIterator[Delivery], want: int) -> builtins.list[Delivery]:
        """Read up to ``want`` deliveries, until none comes for a while."""
        held: builtins.list[Delivery] = []
        timeout = self.wait
        while len(held) < want:
            try:
                held.append(await asyncio.wait_for(anext(iterator), timeout))
            except (TimeoutError, StopAsyncIteration):
                break
            timeout = self.idle
        return held

    async def _put_back(self, held: builtins.list[Delivery]) -> None:
        """Republish each unsettled read as a fresh copy, then acknowledge the read."""
        for delivery in held:
            headers = dict(delivery.headers)
            headers.setdefault(DEAD_LETTER_ID_HEADER, delivery.message_id)
            await self.transport.publish(
                self.dead_letter_queue,
                delivery.body,
                message_id=f"{headers[DEAD_LETTER_ID_HEADER]}.dl-{uuid.uuid4().hex[:8]}",
                headers=headers,
            )
            await delivery.ack()


class _Reading:
    """``async with``: the dead letters read, put back on exit unless settled meanwhile."""

    def __init__(self, owner: DeadLetters, limit: int) -> None:
        self._owner = owner
        self._limit = limit
        self._held: list[Delivery] = []
        self._iterator: AsyncIterator[Delivery] | None = None

    async def __aenter__(self) -> list[Delivery]:
        owner = self._owner
        expected = await owner._expected()
        want = self._limit if expected is None else min(self._limit, expected)
        if want > 0:
            self._iterator = owner.transport.consume(owner.dead_letter_queue, prefetch=want)
            self._held = await owner._read(self._iterator, want)
        return self._held

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            await self._owner._put_back(self._held)
        finally:
            if self._iterator is not None:
                await _close(self._iterator)


def _redrive_id(dead_letter_id: str) -> str:
    """A new transport message id for a redrive (brokers that deduplicate ids keep it)."""
    return f"{_REDRIVE_SUFFIX.sub('', dead_letter_id)}.redrive-{uuid.uuid4().hex[:8]}"


def _without_dead_letter_headers(headers: Mapping[str, str]) -> dict[str, str]:
    dead = {
        DEAD_LETTER_REASON_HEADER,
        DEAD_LETTER_QUEUE_HEADER,
        DEAD_LETTER_ATTEMPT_HEADER,
        DEAD_LETTER_TIME_HEADER,
        DEAD_LETTER_ID_HEADER,
    }
    return {
        key: value
        for key, value in headers.items()
        if key not in dead and not key.startswith(_DEAD_LETTER_PREFIX)
    }


async def _close(iterator: AsyncIterator[Delivery]) -> None:
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()
