"""The WorkflowStore contract every store plugin implements (DESIGN section 8)."""

from __future__ import annotations

import base64
import builtins
import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from types import TracebackType

from pydantic import BaseModel, Field

from ..workflow.codec import canonical_json
from ..workflow.events import WorkflowEvent
from .records import STATUSES, WorkflowRecord, WorkflowSummary

__all__ = ["MAX_LIST_LIMIT", "WorkflowPage", "WorkflowStore"]

#: The largest page ``WorkflowStore.list`` returns.
MAX_LIST_LIMIT = 1000


class WorkflowPage(BaseModel):
    """One page of workflows, newest first; pass ``next_cursor`` to ``list`` for the next."""

    items: builtins.list[WorkflowSummary] = Field(default_factory=builtins.list)
    next_cursor: str | None = None


class WorkflowStore(ABC):
    """Where a monitor records workflow events and tools read them: ``async with store: ...``.

    Semantics every store meets (``paigeant.testing.WorkflowStoreConformance`` checks them):

    - ``record`` is idempotent (an event is applied once, keyed by ``event_key(event)``) and
      order-tolerant (``WorkflowRecord.apply`` gives the same record in any order).
    - ``record_many`` applies a batch in one transaction: when it returns, every event is
      committed, so a monitor may acknowledge them.
    - ``list`` pages newest first (in the order workflows were first recorded); a cursor stays
      valid while new workflows arrive: they appear before the first page, never inside a later one.
    - ``watch`` yields each workflow's record after a change is committed (by this process or,
      for shared stores, by any other), starting from the moment iteration begins.
    - Several processes may read while one (or, where the store says so, several) record.
    """

    #: The store's name as registered (``sqlite``, ``memory``, ``postgres``...).
    name: str = ""

    @abstractmethod
    async def connect(self) -> None:
        """Open the store (creating or migrating its schema); calling it again does nothing."""

    @abstractmethod
    async def close(self) -> None:
        """Close the store; idempotent."""

    async def record(self, event: WorkflowEvent) -> None:
        """Record one event (idempotent, order-tolerant)."""
        await self.record_many([event])

    @abstractmethod
    async def record_many(self, events: Sequence[WorkflowEvent]) -> int:
        """Record ``events`` in one transaction; return how many were new (not seen before)."""

    @abstractmethod
    async def get(self, correlation_id: str) -> WorkflowRecord | None:
        """The record of workflow ``correlation_id``, or None when nothing was recorded."""

    @abstractmethod
    async def list(
        self,
        *,
        status: str | None = None,
        activity: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> WorkflowPage:
        """Workflows newest first, filtered by ``status`` and/or ``activity`` (a step's name)."""

    @abstractmethod
    async def counts(self, *, activity: str | None = None) -> dict[str, int]:
        """How many workflows have each status (every status listed, zeros included)."""

    @abstractmethod
    async def activities(self) -> builtins.list[str]:
        """Every activity name recorded in any workflow, sorted."""

    @abstractmethod
    def watch(self) -> AsyncIterator[WorkflowRecord]:
        """Yield the record of each workflow that changes, as the changes are committed."""

    def describe(self) -> str:
        """Where this store keeps its records, for messages (never a password)."""
        return f"the {self.name or type(self).__name__} workflow store"

    async def __aenter__(self) -> WorkflowStore:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- helpers for store authors -----------------------------------------------------------

    @staticmethod
    def event_key(event: WorkflowEvent) -> str:
        """The idempotency key of ``event``: its id, else a digest of its content."""
        if event.id:
            return event.id
        digest = hashlib.sha256(canonical_json(event.model_dump(mode="json"))).hexdigest()
        return f"{event.correlation_id}.{event.type}.sha256-{digest[:32]}"

    @staticmethod
    def check_query(status: str | None, limit: int) -> None:
        """Raise ValueError for an unknown ``status`` or a ``limit`` out of 1..MAX_LIST_LIMIT."""
        if status is not None and status not in STATUSES:
            raise ValueError(
                f"unknown workflow status {status!r}; use one of {', '.join(STATUSES)}"
            )
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_LIST_LIMIT}, got {limit}")

    @staticmethod
    def encode_cursor(position: int) -> str:
        """An opaque cursor for the page after the workflow at ``position`` (a store's sequence)."""
        raw = json.dumps({"v": 1, "before": position}, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @staticmethod
    def decode_cursor(cursor: str) -> int:
        """The position encoded by ``encode_cursor``; ValueError for anything else."""
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            data = json.loads(raw)
            position = data["before"]
            if data.get("v") != 1 or not isinstance(position, int) or isinstance(position, bool):
                raise ValueError
            return position
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ValueError(
                f"invalid cursor {cursor!r}: pass the next_cursor of a previous page"
            ) from None
