"""The queues a deployment uses and what they hold: what ``paigeant queues`` and the dashboard show.

The store knows every activity recorded, so it knows their queues (and their compensation
queues); the transport knows what each holds, where it has ``stats()``.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..transports.base import QueueStats, Transport
from ..transports.queues import (
    ACTIVITY_NAME_PATTERN,
    activity_queue,
    compensate_queue,
    monitor_queue,
)
from .base import WorkflowStore

__all__ = ["holds_messages", "known_queues", "queue_overview", "queue_stats"]


async def known_queues(store: WorkflowStore) -> dict[str, bool]:
    """Every queue the store's workflows use (True: a compensation queue), and the monitor's."""
    known = {monitor_queue(): False}
    for name in await store.activities():
        if not ACTIVITY_NAME_PATTERN.fullmatch(name):
            continue  # a name no queue can have (an event that named no activity: "?")
        known[activity_queue(name)] = False
        known[compensate_queue(name)] = True
    return known


async def queue_stats(transport: Transport, queue: str) -> QueueStats | None:
    """What ``queue`` holds, or None when the transport cannot tell (no ``stats()``)."""
    try:
        return await transport.stats(queue)
    except NotImplementedError:
        return None


def holds_messages(stats: QueueStats | None) -> bool:
    """Whether ``stats`` counts any message: ready, in flight, delayed or dead."""
    return stats is not None and any((stats.ready, stats.in_flight, stats.delayed, stats.dead))


async def queue_overview(
    transport: Transport, known: Mapping[str, bool]
) -> list[tuple[str, QueueStats | None]]:
    """Stats of each ``known`` queue by name; compensation queues only when they hold something."""
    rows: list[tuple[str, QueueStats | None]] = []
    for queue, compensation in sorted(known.items()):
        stats = await queue_stats(transport, queue)
        if compensation and not holds_messages(stats):
            continue
        rows.append((queue, stats))
    return rows
