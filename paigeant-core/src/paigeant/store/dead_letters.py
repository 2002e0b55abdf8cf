"""Dead letters of a queue: list, show and redrive them, on any transport, through its public API.

Listing and showing **browse** the dead-letter queue (``Transport.browse``) where the transport
can: read-only copies, nothing moves, any number of readers see the same letters in the same
order, and a redrive running meanwhile finds every letter it is asked for.

A transport that cannot browse (``browse`` raises NotImplementedError) is read by consuming,
which moves things, and this module says so: every dead letter read is put back as a fresh
message (same body and headers, a new transport message id, its first id kept in
``DEAD_LETTER_ID_HEADER``) in the acknowledgement of the one read (``ack(forward=...)``: atomic
where the transport can, else a crash in between leaves a duplicate, never a loss). Listing
therefore never raises a delivery count and never trips poison protection on the dead-letter
queue; it reads the whole queue (up to ``SCAN_LIMIT``) and puts it all back in order, so a
``limit`` shows the oldest every time. But while one reader holds the letters, another reader
(or a redrive) sees fewer of them, and letters that arrive during a read end up before the ones
read.

Redriving always consumes (it must take the letters): each one chosen is republished to its
source queue (``DEAD_LETTER_QUEUE_HEADER``) without the dead-letter headers, as a new message
(attempt 1), in the acknowledgement of the dead letter; the others read are put back as above.
The redriven message's id is deterministic, ``<id>.redrive-<n>`` (``n`` one more than the
letter's own redrive number), so a redrive repeated after a crash sends the same id again: a
broker that deduplicates ids drops it, and elsewhere it is recognisable. The body and its
signature are unchanged, so the worker verifies it again: a tampered message stays rejected.
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
    BrowsedMessage,
    Delivery,
    Outgoing,
    Transport,
)
from ..transports.queues import dead_letter_queue
from ..workflow.wire import CORRELATION_HEADER

__all__ = ["DEAD_LETTER_ID_HEADER", "SCAN_LIMIT", "DeadLetter", "DeadLetters", "redacted"]

#: Header of a dead letter put back after reading: the message id it was dead-lettered with.
DEAD_LETTER_ID_HEADER = "x-paigeant-dead-letter-id"
#: Most dead letters read from one queue by one list, show or redrive.
SCAN_LIMIT = 10_000
_DEAD_LETTER_PREFIX = "x-paigeant-dead-letter-"
_REDRIVE_SUFFIX = re.compile(r"\.redrive-(\d+)$")
_REDACTED = "<redacted>"
#: A JSON Web Token (JWS compact form with a JSON payload): header.payload.signature.
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
#: ``"obo_token": "..."`` in text that is not valid JSON (a truncated or tampered body).
_OBO_TOKEN_TEXT = re.compile(r'("obo_token"\s*:\s*)"(?:[^"\\]|\\.)*"')


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
    def from_delivery(cls, delivery: Delivery | BrowsedMessage, source_queue: str) -> DeadLetter:
        """Describe a delivery (or browsed message) of ``source_queue``'s dead-letter queue."""
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

    @property
    def redrive_id(self) -> str:
        """The message id its redrive publishes: ``<id>.redrive-<n>``, the same every time."""
        found = _REDRIVE_SUFFIX.search(self.id)
        if found is None:
            return f"{self.id}.redrive-1"
        return f"{self.id[: found.start()]}.redrive-{int(found.group(1)) + 1}"

    def content(self, *, raw: bool = False) -> Any:
        """The body for display: JSON (else text) with tokens redacted, unless ``raw``.

        Redacted: the value of every ``obo_token`` (the on-behalf-of token) and anything
        shaped like a JSON Web Token, in JSON and in text alike.
        """
        try:
            value = json.loads(self.body)
        except ValueError:
            text = self.body.decode("utf-8", errors="replace")
            return text if raw else _redact_text(text)
        return value if raw else redacted(value)

    def to_dict(self, *, raw: bool = False) -> dict[str, Any]:
        """A JSON-able description (headers and body redacted unless ``raw``), for ``--json``."""
        headers = dict(self.headers)
        return {
            "id": self.id,
            "queue": self.queue,
            "source_queue": self.source_queue,
            "reason": self.reason,
            "attempt": self.attempt,
            "dead_lettered_at": self.dead_lettered_at,
            "correlation_id": self.correlation_id,
            "bytes": len(self.body),
            "headers": headers if raw else redacted(headers),
            "body": self.content(raw=raw),
        }


def redacted(value: Any) -> Any:
    """``value`` (parsed JSON) with every ``obo_token`` and JWT-shaped string redacted."""
    if isinstance(value, dict):
        return {
            key: _REDACTED if key == "obo_token" and item is not None else redacted(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redacted(item) for item in value]
    if isinstance(value, str):
        return _JWT.sub(_REDACTED, value)
    return value


def _redact_text(text: str) -> str:
    return _JWT.sub(_REDACTED, _OBO_TOKEN_TEXT.sub(rf'\1"{_REDACTED}"', text))


class DeadLetters:
    """The dead letters of ``queue`` (an activity's or compensation's full queue name)."""

    def __init__(
        self, transport: Transport, queue: str, *, wait: float = 2.0, idle: float = 0.5
    ) -> None:
        """Read ``queue``'s dead letters on ``transport`` (connected by the caller).

        Args:
            wait: seconds to wait for the first dead letter when consuming without stats.
            idle: seconds without a new dead letter after which consuming stops.
        """
        self.transport = transport
        self.queue = queue
        self.dead_letter_queue = dead_letter_queue(queue)
        self.wait = wait
        self.idle = idle

    async def list(self, limit: int = 100) -> list[DeadLetter]:
        """Up to ``limit`` dead letters, oldest first (browsed where the transport can)."""
        try:
            found = await self.transport.browse(self.dead_letter_queue, limit=limit)
        except NotImplementedError:
            async with self._reading(SCAN_LIMIT) as held:
                return [DeadLetter.from_delivery(delivery, self.queue) for delivery in held[:limit]]
        return [DeadLetter.from_delivery(message, self.queue) for message in found]

    async def get(self, dead_letter_id: str, *, limit: int = SCAN_LIMIT) -> DeadLetter | None:
        """The dead letter with ``dead_letter_id`` among the first ``limit``, or None."""
        for letter in await self.list(limit):
            if letter.id == dead_letter_id:
                return letter
        return None

    async def redrive(
        self, ids: Collection[str] | None = None, *, limit: int = SCAN_LIMIT
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
                forward: builtins.list[Outgoing] = []
                if letter.id not in done:  # a duplicate left by a crash is redriven once
                    forward.append(
                        Outgoing(
                            letter.source_queue,
                            delivery.body,
                            letter.redrive_id,
                            _without_dead_letter_headers(delivery.headers),
                        )
                    )
                    done.add(letter.id)
                    redriven.append(letter)
                await delivery.ack(forward=forward)
                held.remove(delivery)
        return redriven

    # -- reading by consuming, without losing anything -------------------------------------

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
        """Put each unsettled read back, in order, as a fresh copy forwarded by its ack."""
        for delivery in held:
            headers = dict(delivery.headers)
            headers.setdefault(DEAD_LETTER_ID_HEADER, delivery.message_id)
            copy_id = f"{headers[DEAD_LETTER_ID_HEADER]}.dl-{uuid.uuid4().hex[:8]}"
            await delivery.ack(
                forward=[Outgoing(self.dead_letter_queue, delivery.body, copy_id, headers)]
            )


class _Reading:
    """``async with``: the dead letters consumed, put back on exit unless settled meanwhile."""

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
