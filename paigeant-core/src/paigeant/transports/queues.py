"""Queue naming: the one place that knows how activity, compensation, dead-letter and monitor queues are named."""

from __future__ import annotations

import re

from ..settings import namespace

__all__ = [
    "ACTIVITY_NAME_PATTERN",
    "activity_queue",
    "compensate_queue",
    "dead_letter_queue",
    "monitor_queue",
    "validate_activity_name",
]

ACTIVITY_NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]+")


def validate_activity_name(name: str) -> str:
    """Return ``name`` if it is a valid activity name (``[A-Za-z0-9_-]+``), else raise ValueError."""
    if not isinstance(name, str) or not ACTIVITY_NAME_PATTERN.fullmatch(name):
        raise ValueError(f"invalid activity name {name!r}: use letters, digits, '-' and '_' only")
    return name


def activity_queue(name: str, *, ns: str | None = None) -> str:
    """Return the queue an activity's steps are sent to: ``<namespace>.<name>``."""
    return f"{ns or namespace()}.{validate_activity_name(name)}"


def compensate_queue(name: str, *, ns: str | None = None) -> str:
    """Return the queue an activity's compensations are sent to."""
    return f"{activity_queue(name, ns=ns)}.compensate"


def dead_letter_queue(queue: str) -> str:
    """Return the dead-letter queue of ``queue``; read it with ``transport.consume``."""
    return f"{queue}.dead-letter"


def monitor_queue(*, ns: str | None = None) -> str:
    """Return the queue monitored workflows send their events to, read by ``paigeant monitor``.

    It cannot clash with an activity's queue: activity names hold no dots.
    """
    return f"{ns or namespace()}.monitor.events"
