"""Names and arguments of everything the transport declares on the broker.

Per queue ``q``: the work queue ``q`` and its dead-letter queue ``q.dead-letter`` (both quorum
queues), and, once a delay needs them, delay queues ``q.delay.NN``. Shared by all queues: the
delay exchanges ``paigeant.delay.NN`` and ``paigeant.delay.deliver`` (topic exchanges).

A delay of ``ms`` milliseconds is written in binary, one routing-key word per level from the
highest to the lowest, followed by the target queue: ``0.0.….1.0.1.<q>``. Level ``k``'s
exchange routes a message whose bit ``k`` is 1 to ``q.delay.k`` (message TTL ``2**k`` ms),
and one whose bit is 0 straight on to level ``k - 1``; each delay queue dead-letters expired
messages to the next level down, and level 0 to the deliver exchange, which routes them to
``q``. Every delay queue holds messages of one TTL, so none waits behind a longer one.
"""

from __future__ import annotations

import math
from typing import Any

from paigeant import dead_letter_queue

__all__ = [
    "ATTEMPTS_HEADER",
    "DELAY_EXCHANGE_PREFIX",
    "DELAY_LEVELS",
    "DELIVER_EXCHANGE",
    "MAX_DELAY",
    "dead_letter_queue_arguments",
    "delay_bits",
    "delay_exchange",
    "delay_queue",
    "delay_queue_arguments",
    "delay_routing_key",
    "deliver_binding",
    "is_dead_letter_queue",
    "level_binding",
    "pass_binding",
    "to_milliseconds",
    "validate_queue",
    "work_queue_arguments",
]

#: Levels of the delay ladder: delays up to ``2**DELAY_LEVELS - 1`` ms (about 49.7 days).
DELAY_LEVELS = 32
#: The longest delay, in seconds.
MAX_DELAY = (2**DELAY_LEVELS - 1) / 1000
#: First part of the delay exchanges' names.
DELAY_EXCHANGE_PREFIX = "paigeant.delay"
#: The exchange that hands messages whose delay is over to their queue.
DELIVER_EXCHANGE = f"{DELAY_EXCHANGE_PREFIX}.deliver"
#: Header (ours) of a message republished by ``nack(delay=)``: deliveries it had before.
ATTEMPTS_HEADER = "x-paigeant-attempts"

#: Longest queue name: its delay routing key (64 bytes of bits) must fit in 255 bytes.
_MAX_QUEUE_BYTES = 255 - 2 * DELAY_LEVELS - 1


_VALID: set[str] = set()


def validate_queue(queue: str) -> str:
    """Return ``queue`` if it can be a queue here; ValueError naming the problem if not."""
    if queue in _VALID:
        return queue
    if not queue or queue.startswith("amq."):
        raise ValueError(f"invalid RabbitMQ queue name {queue!r}: empty or reserved ('amq.')")
    words = queue.split(".")
    if any(not word or word in ("*", "#") or "*" in word or "#" in word for word in words):
        raise ValueError(
            f"invalid queue name {queue!r}: words between dots must be non-empty and "
            "hold no '*' or '#' (the delay ladder routes by topic)"
        )
    if len(queue.encode()) > _MAX_QUEUE_BYTES:
        raise ValueError(f"queue name {queue[:40]!r}... is longer than {_MAX_QUEUE_BYTES} bytes")
    if len(_VALID) < 100_000:  # names seen are few; keep the memo bounded all the same
        _VALID.add(queue)
    return queue


_DEAD_LETTER_SUFFIX = dead_letter_queue("")


def is_dead_letter_queue(queue: str) -> bool:
    """Whether ``queue`` is some queue's dead-letter queue (``dead_letter_queue(q)``)."""
    return queue.endswith(_DEAD_LETTER_SUFFIX)


def to_milliseconds(delay: float) -> int:
    """``delay`` seconds as whole milliseconds (rounded up); ValueError past MAX_DELAY."""
    if delay != delay or delay < 0:  # NaN or negative
        raise ValueError(f"delay must be a non-negative number of seconds, not {delay!r}")
    if delay > MAX_DELAY:
        raise ValueError(f"delay {delay}s is longer than the longest supported, {MAX_DELAY}s")
    return math.ceil(delay * 1000) if delay > 0 else 0


def delay_bits(ms: int) -> list[int]:
    """The levels whose bit is set in ``ms``, highest first (the delay queues it passes)."""
    return [level for level in range(DELAY_LEVELS - 1, -1, -1) if ms >> level & 1]


def delay_exchange(level: int) -> str:
    """The topic exchange of delay level ``level`` (0 is the shortest, 1 ms)."""
    return f"{DELAY_EXCHANGE_PREFIX}.{level:02d}"


def delay_queue(queue: str, level: int) -> str:
    """The queue holding ``queue``'s messages for ``2**level`` ms."""
    return f"{queue}.delay.{level:02d}"


def delay_routing_key(queue: str, ms: int) -> str:
    """Routing key of a message due in ``queue`` after ``ms`` milliseconds."""
    bits = format(ms, f"0{DELAY_LEVELS}b")
    return ".".join(bits) + "." + queue


def _pattern(level: int, bit: str) -> list[str]:
    words = ["*"] * DELAY_LEVELS
    words[DELAY_LEVELS - 1 - level] = bit
    return words


def level_binding(queue: str, level: int) -> str:
    """Binding key from ``delay_exchange(level)`` to ``delay_queue(queue, level)`` (bit set)."""
    return ".".join([*_pattern(level, "1"), queue])


def pass_binding(level: int) -> str:
    """Binding key from ``delay_exchange(level)`` to the level below (bit clear)."""
    return ".".join([*_pattern(level, "0"), "#"])


def deliver_binding(queue: str) -> str:
    """Binding key from the deliver exchange to ``queue``."""
    return ".".join(["*"] * DELAY_LEVELS + [queue])


def _at_least_once(exchange: str, routing_key: str | None = None) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": exchange,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }
    if routing_key is not None:
        arguments["x-dead-letter-routing-key"] = routing_key
    return arguments


def work_queue_arguments(queue: str, delivery_limit: int) -> dict[str, Any]:
    """A work queue: quorum, broker-counted deliveries, at-least-once dead letters past the limit."""
    return {
        **_at_least_once("", dead_letter_queue(queue)),
        "x-delivery-limit": delivery_limit,
    }


def dead_letter_queue_arguments() -> dict[str, Any]:
    """A dead-letter queue: quorum, kept until consumed."""
    return {"x-queue-type": "quorum"}


def delay_queue_arguments(level: int) -> dict[str, Any]:
    """Delay queue of ``level``: TTL ``2**level`` ms, expired messages go one level down."""
    below = delay_exchange(level - 1) if level > 0 else DELIVER_EXCHANGE
    return {**_at_least_once(below), "x-message-ttl": 2**level}
