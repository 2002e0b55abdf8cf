"""What a workflow store holds: one WorkflowRecord per workflow, built from its events.

``WorkflowRecord.apply(event)`` folds one event into the record. The fold is order-tolerant:
every field is merged with a rule that gives the same record whatever order the events arrive
in (a completion before its dispatch, a retry after the success), so stores never sort events.
A store applies each event once (keyed by ``WorkflowEvent.id``), which makes it idempotent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

from ..workflow.events import EventType, WorkflowEvent
from ..workflow.messages import ActivityLogEntry, ActivitySpec, Fault

__all__ = [
    "STATUSES",
    "CompensationRecord",
    "RetryRecord",
    "Revision",
    "StepRecord",
    "WorkflowRecord",
    "WorkflowState",
    "WorkflowSummary",
]

WorkflowState = Literal[
    "running", "compensating", "completed", "faulted", "terminated", "compensation_failed"
]
#: Every status a recorded workflow can have, in lifecycle order.
STATUSES: tuple[WorkflowState, ...] = (
    "running",
    "compensating",
    "completed",
    "faulted",
    "terminated",
    "compensation_failed",
)
StepState = Literal["running", "retrying", "completed", "faulted"]

_TERMINAL: dict[EventType, WorkflowState] = {
    EventType.WORKFLOW_COMPLETED: "completed",
    EventType.WORKFLOW_TERMINATED: "terminated",
    EventType.WORKFLOW_FAULTED: "faulted",
    EventType.WORKFLOW_COMPENSATION_FAILED: "compensation_failed",
}
#: When two different terminal events arrive (a duplicate run), the later in this order wins.
_TERMINAL_RANK: dict[str, int] = {
    "completed": 1,
    "terminated": 2,
    "faulted": 3,
    "compensation_failed": 4,
}


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore")


class RetryRecord(_Record):
    """A failed attempt of a step that was retried: its error and the delay before the next."""

    attempt: int
    error: str | None = None
    delay: float | None = None
    at: datetime


class StepRecord(_Record):
    """One step of a workflow as it ran: status, attempts, timing, worker, output and error."""

    index: int
    name: str
    status: StepState = "running"
    started: int = 0
    attempt: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration: float | None = None
    worker: str | None = None
    output: Any = None
    error: str | None = None
    retries: list[RetryRecord] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def attempts(self) -> int:
        """Attempts made: the highest attempt seen, or more when a redrive restarted the count."""
        return max(self.started, self.attempt, 1 if self.status != "running" else 0)


class CompensationRecord(_Record):
    """The compensation of one completed step: compensated, or failed with its error."""

    step: int | None = None
    name: str
    status: Literal["compensated", "failed"] = "compensated"
    attempt: int | None = None
    worker: str | None = None
    at: datetime | None = None
    error: str | None = None


class Revision(_Record):
    """An itinerary revision: the steps ``after`` (the step at ``step``) added."""

    step: int | None = None
    after: str | None = None
    added: list[ActivitySpec] = Field(default_factory=list)
    at: datetime


class WorkflowSummary(_Record):
    """A workflow in a list: status, activities, progress, error and times (no outputs)."""

    correlation_id: str
    status: WorkflowState
    activities: list[str] = Field(default_factory=list)
    current: str | None = None
    steps_completed: int = 0
    steps_total: int = 0
    error: str | None = None
    dispatcher: str | None = None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None


class WorkflowRecord(_Record):
    """Everything recorded about one workflow (never its on-behalf-of token, never a key)."""

    correlation_id: str
    status: WorkflowState = "running"
    itinerary: list[ActivitySpec] = Field(default_factory=list)
    revisions: list[Revision] = Field(default_factory=list)
    steps: list[StepRecord] = Field(default_factory=list)
    compensations: list[CompensationRecord] = Field(default_factory=list)
    variables: dict[str, Any] = Field(default_factory=dict)
    fault: Fault | None = None
    error: str | None = None
    reason: str | None = None
    dispatcher: str | None = None
    dispatched_at: datetime | None = None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None
    events: int = 0

    @classmethod
    def from_event(cls, event: WorkflowEvent) -> WorkflowRecord:
        """A new record holding just ``event``."""
        record = cls(
            correlation_id=event.correlation_id,
            created_at=event.timestamp,
            updated_at=event.timestamp,
        )
        record.apply(event)
        return record

    # -- derived views ---------------------------------------------------------------------

    @property
    def revised_itinerary(self) -> list[ActivitySpec]:
        """The itinerary as dispatched with every revision's steps inserted where they ran."""
        specs = list(self.itinerary)
        for revision in sorted(self.revisions, key=_revision_order):
            at = len(specs) if revision.step is None else min(revision.step + 1, len(specs))
            specs[at:at] = revision.added
        return specs

    @property
    def activities(self) -> list[str]:
        """Every activity name of the workflow: itinerary as revised, then steps seen beyond it."""
        names = [spec.name for spec in self.revised_itinerary]
        for step in self.steps:
            if step.index >= len(names):
                names.append(step.name)
        return names

    @property
    def pending(self) -> list[str]:
        """Activities of the revised itinerary that have not started (known once dispatched)."""
        seen = max((step.index for step in self.steps), default=-1)
        return [spec.name for spec in self.revised_itinerary[seen + 1 :]]

    def summary(self) -> WorkflowSummary:
        """This record as a list row."""
        names = self.activities
        running = [step for step in self.steps if step.status in ("running", "retrying")]
        current = running[-1].name if running else None
        if current is None and self.status == "running" and self.pending:
            current = self.pending[0]
        return WorkflowSummary(
            correlation_id=self.correlation_id,
            status=self.status,
            activities=names,
            current=current,
            steps_completed=sum(1 for step in self.steps if step.status == "completed"),
            steps_total=max(len(names), len(self.steps)),
            error=self.error,
            dispatcher=self.dispatcher,
            created_at=self.created_at,
            updated_at=self.updated_at,
            finished_at=self.finished_at,
        )

    # -- the fold --------------------------------------------------------------------------

    def apply(self, event: WorkflowEvent) -> None:
        """Fold ``event`` into this record (apply each event once; the order does not matter)."""
        if event.correlation_id != self.correlation_id:
            raise ValueError(
                f"event of workflow {event.correlation_id!r} applied to {self.correlation_id!r}"
            )
        self.events += 1
        self.created_at = min(self.created_at, event.timestamp)
        self.updated_at = max(self.updated_at, event.timestamp)
        kind = event.type
        if kind == EventType.WORKFLOW_DISPATCHED:
            self._dispatched(event)
        elif kind in _TERMINAL:
            self._finished(event, _TERMINAL[kind])
        elif kind == EventType.ACTIVITY_STARTED:
            step = self._step(event)
            step.started += 1
            latest = step.worker is None or (event.attempt or 0) >= step.attempt
            if latest and step.status not in ("completed", "faulted"):
                step.worker = event.worker
            step.attempt = max(step.attempt, event.attempt or 0)
            step.started_at = _earliest(step.started_at, event.timestamp)
        elif kind == EventType.ACTIVITY_RETRIED:
            step = self._step(event)
            attempt = event.attempt or 0
            if all(retry.attempt != attempt for retry in step.retries):
                step.retries.append(
                    RetryRecord(
                        attempt=attempt,
                        error=event.error,
                        delay=event.retry_delay,
                        at=event.timestamp,
                    )
                )
                step.retries.sort(key=lambda retry: retry.attempt)
            step.attempt = max(step.attempt, attempt)
        elif kind == EventType.ACTIVITY_COMPLETED:
            step = self._step(event)
            step.status, step.output, step.worker = "completed", event.output, event.worker
            step.duration = event.duration
            step.finished_at = event.timestamp
            step.attempt = max(step.attempt, event.attempt or 0)
            if event.duration is not None:
                started = datetime.fromtimestamp(
                    event.timestamp.timestamp() - event.duration, event.timestamp.tzinfo
                )
                step.started_at = _earliest(step.started_at, started)
        elif kind == EventType.ACTIVITY_FAULTED:
            step = self._step(event)
            if step.status != "completed":
                step.status, step.worker = "faulted", event.worker
                step.finished_at = event.timestamp
            step.error = event.error
            step.attempt = max(step.attempt, event.attempt or 0)
            self.fault = event.fault or self.fault
        elif kind == EventType.ACTIVITY_COMPENSATED:
            self._compensated(
                CompensationRecord(
                    step=event.step,
                    name=event.activity or "?",
                    attempt=event.attempt,
                    worker=event.worker,
                    at=event.timestamp,
                )
            )
        elif kind == EventType.ITINERARY_REVISED:
            revision = Revision(
                step=event.step, after=event.activity, added=event.added, at=event.timestamp
            )
            if revision not in self.revisions:
                self.revisions.append(revision)
                self.revisions.sort(key=_revision_order)
        self._derive_status()

    def _dispatched(self, event: WorkflowEvent) -> None:
        self.itinerary = list(event.itinerary)
        self.dispatcher = event.dispatcher
        self.dispatched_at = event.timestamp
        if self.finished_at is None:  # the final variables, once known, win
            self.variables = dict(event.variables)

    def _finished(self, event: WorkflowEvent, status: WorkflowState) -> None:
        if self.finished_at is not None and _TERMINAL_RANK[status] < _TERMINAL_RANK[self.status]:
            return
        self.status = status
        self.finished_at = event.timestamp
        self.variables = dict(event.variables)
        self.error = event.error
        self.reason = event.reason
        self.fault = event.fault or self.fault
        for index, entry in enumerate(event.activity_log):
            self._logged(index, entry)
        for name in event.compensated:
            if all(comp.name != name for comp in self.compensations):
                self.compensations.append(CompensationRecord(name=name))
        if status == "compensation_failed" and event.activity is not None:
            self._compensated(
                CompensationRecord(
                    step=event.step,
                    name=event.activity,
                    status="failed",
                    worker=event.worker,
                    at=event.timestamp,
                    error=event.error,
                )
            )

    def _logged(self, index: int, entry: ActivityLogEntry) -> None:
        """Merge a step from a terminal event's activity log (an ActivityCompleted wins)."""
        step = self._step_at(index, entry.name)
        if step.status != "completed":
            step.status, step.output, step.worker = "completed", entry.output, entry.worker
            step.finished_at = entry.finished_at
        if step.duration is None:
            step.duration = (entry.finished_at - entry.started_at).total_seconds()
        step.attempt = max(step.attempt, entry.attempt)
        step.started_at = _earliest(step.started_at, entry.started_at)

    def _compensated(self, record: CompensationRecord) -> None:
        for i, existing in enumerate(self.compensations):
            same_step = existing.step is not None and existing.step == record.step
            placeholder = existing.step is None and existing.name == record.name
            if same_step or placeholder:
                if existing.status == "failed" and record.status == "compensated":
                    return  # a failure is final; a success for the same step is a duplicate
                self.compensations[i] = record
                break
        else:
            self.compensations.append(record)
        self.compensations.sort(key=_compensation_order)

    def _step(self, event: WorkflowEvent) -> StepRecord:
        name = event.activity or "?"
        if event.step is not None:
            return self._step_at(event.step, name)
        for step in self.steps:  # an event from a sender that does not number steps
            if step.name == name and step.status != "completed":
                return step
        return self._step_at(len(self.steps), name)

    def _step_at(self, index: int, name: str) -> StepRecord:
        for step in self.steps:
            if step.index == index:
                return step
        step = StepRecord(index=index, name=name)
        self.steps.append(step)
        self.steps.sort(key=lambda s: s.index)
        return step

    def _derive_status(self) -> None:
        for step in self.steps:
            if step.status in ("completed", "faulted"):
                continue
            latest_retry = max((retry.attempt for retry in step.retries), default=0)
            step.status = "retrying" if latest_retry and latest_retry >= step.attempt else "running"
        if self.finished_at is not None:
            return
        failed = self.fault is not None or any(s.status == "faulted" for s in self.steps)
        self.status = "compensating" if failed or self.compensations else "running"


def _earliest(current: datetime | None, candidate: datetime) -> datetime:
    return candidate if current is None or candidate < current else current


def _revision_order(revision: Revision) -> tuple[int, datetime]:
    return (-1 if revision.step is None else revision.step, revision.at)


def _compensation_order(record: CompensationRecord) -> tuple[int, str]:
    """Compensations run in reverse: the latest step first."""
    return (-(record.step if record.step is not None else -1), record.name)
