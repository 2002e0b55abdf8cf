"""Status counters a store keeps beside its rows, so ``counts()`` reads a few rows, not all."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

__all__ = ["CountDeltas"]


class CountDeltas:
    """The changes one ``record_many`` batch makes to a store's status counters, summed per key.

    A store calls ``workflow`` once per workflow it folds, then applies ``statuses()`` (per
    status) and ``activities()`` (per activity and status) as one upsert per key, in the sorted
    order given, in the batch's transaction: writers that lock counters in one order cannot
    deadlock on them. Keys whose changes cancel out are left out (no write, no lock).

    The activity counters follow the store's ``workflow_activities`` rows (only ever added):
    the workflow's rows that were there before the batch (``kept``) move from the old status to
    the new one, and the rows the batch added (``added``) count the new status.
    """

    def __init__(self) -> None:
        """Start with no changes."""
        self._statuses: Counter[str] = Counter()
        self._activities: Counter[tuple[str, str]] = Counter()

    def workflow(
        self, before: str | None, after: str, kept: Iterable[str], added: Iterable[str]
    ) -> None:
        """Count one workflow folded from status ``before`` (None: new) to ``after``.

        ``kept``: its activities already recorded before this batch (none for a new workflow);
        ``added``: the activities this batch recorded for it.
        """
        if before != after:
            if before is not None:
                self._statuses[before] -= 1
                for name in set(kept):
                    self._activities[(name, before)] -= 1
                    self._activities[(name, after)] += 1
            self._statuses[after] += 1
        for name in set(added):
            self._activities[(name, after)] += 1

    def statuses(self) -> list[tuple[str, int]]:
        """``(status, change)`` for every status whose count changes, sorted by status."""
        return sorted((key, n) for key, n in self._statuses.items() if n)

    def activities(self) -> list[tuple[str, str, int]]:
        """``(activity, status, change)`` for every counter that changes, sorted by key."""
        return sorted((name, status, n) for (name, status), n in self._activities.items() if n)

    def __bool__(self) -> bool:
        """Whether any counter changes."""
        return any(self._statuses.values()) or any(self._activities.values())
