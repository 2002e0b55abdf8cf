"""JetStream naming: the one place that knows how queues map to streams, subjects and consumers."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

__all__ = ["PROMOTER", "WORKER", "Names", "validate_prefix", "validate_queue"]

#: The durable pull consumer every consume() loop of a queue shares (competing consumers).
WORKER = "paigeant"
#: The durable pull consumer of the delay stream, shared by every transport's promoter.
PROMOTER = "paigeant-promoter"

_TOKEN = re.compile(r"[A-Za-z0-9_-]+")
_READABLE_LIMIT = 150  # stream names may be up to 255 characters (they name store directories)


def validate_prefix(prefix: str) -> str:
    """Return ``prefix`` if it is one subject token (``[A-Za-z0-9_-]+``), else raise ValueError."""
    if not isinstance(prefix, str) or not _TOKEN.fullmatch(prefix):
        raise ValueError(
            f"invalid NATS prefix {prefix!r}: use letters, digits, '-' and '_' only "
            "(it becomes a subject token and part of every stream name)"
        )
    return prefix


def validate_queue(queue: str) -> str:
    """Return ``queue`` if it is ``.``-separated ``[A-Za-z0-9_-]+`` tokens, else raise ValueError."""
    if not isinstance(queue, str) or not all(_TOKEN.fullmatch(t) for t in queue.split(".")):
        raise ValueError(
            f"invalid queue name {queue!r} for NATS: use '.'-separated tokens of letters, "
            "digits, '-' and '_' (no spaces, '*', '>' or empty tokens)"
        )
    return queue


@dataclass(frozen=True, slots=True)
class Names:
    """Streams and subjects under one prefix: ``{prefix}.q.{queue}`` and the delay stream."""

    prefix: str

    def subject(self, queue: str) -> str:
        """The subject ``queue``'s messages are published to (its stream's only subject)."""
        return f"{self.prefix}.q.{queue}"

    def stream(self, queue: str) -> str:
        """The stream holding ``queue``: readable, plus a hash so distinct queues never collide."""
        digest = hashlib.sha256(f"{self.prefix}\0{queue}".encode()).hexdigest()[:8]
        readable = queue.replace(".", "_")[:_READABLE_LIMIT]
        return f"{self.prefix.upper()}_Q_{readable}_{digest}"

    @property
    def delay_stream(self) -> str:
        """The one stream holding every delayed message under this prefix."""
        return f"{self.prefix.upper()}_DELAYED"

    @property
    def delay_wildcard(self) -> str:
        """The delay stream's subjects: one per target queue."""
        return f"{self.prefix}.delayed.>"

    def delay_subject(self, queue: str) -> str:
        """The subject of messages delayed for ``queue``."""
        return f"{self.prefix}.delayed.{queue}"

    def queue_of_delay_subject(self, subject: str) -> str:
        """The target queue of a delay-stream subject (the inverse of ``delay_subject``)."""
        return subject[len(self.prefix) + len(".delayed.") :]
