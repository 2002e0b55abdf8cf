"""Redis key layout: the one place that knows how a queue's keys are named."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CONSUMER_GROUP", "KeySpace"]

#: The consumer group every consume() loop of a queue joins (competing consumers).
CONSUMER_GROUP = "paigeant"


@dataclass(frozen=True, slots=True)
class KeySpace:
    """Key names under one prefix: ``{prefix}:q:{queue}`` and the queue's helper keys."""

    prefix: str

    def stream(self, queue: str) -> str:
        """The stream holding ``queue``'s ready and in-flight messages."""
        return f"{self.prefix}:q:{queue}"

    def delayed(self, queue: str) -> str:
        """The sorted set of ``queue``'s delayed messages, scored by due time in ms."""
        return f"{self.prefix}:delayed:{queue}"

    def delayed_data(self, queue: str) -> str:
        """The hash holding the packed fields of ``queue``'s delayed messages."""
        return f"{self.prefix}:delayed-data:{queue}"

    def dedup(self, queue: str) -> str:
        """The sorted set of message ids forwarded to ``queue``, scored by expiry in ms."""
        return f"{self.prefix}:dedup:{queue}"

    def wake(self, queue: str) -> str:
        """The set of wake-marker entry ids in ``queue``'s stream (markers are not messages)."""
        return f"{self.prefix}:wake:{queue}"

    def queue_keys(self, queue: str) -> tuple[str, str, str, str, str]:
        """Every key of ``queue``: stream, delayed set, delayed data, dedup set, wake markers."""
        return (
            self.stream(queue),
            self.delayed(queue),
            self.delayed_data(queue),
            self.dedup(queue),
            self.wake(queue),
        )
