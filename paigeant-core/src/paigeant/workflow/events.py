"""Workflow lifecycle events (MassTransit Courier's set) and the result of a finished workflow."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field

from .messages import OPT_IN_EVENT_TYPES, ActivityLogEntry, ActivitySpec, Fault, utcnow

__all__ = [
    "OPT_IN_EVENTS",
    "TERMINAL_EVENTS",
    "EventType",
    "WorkflowEvent",
    "WorkflowResult",
    "WorkflowStatus",
]


class EventType(StrEnum):
    """The kinds of event a routing slip emits to its subscriptions."""

    WORKFLOW_DISPATCHED = "WorkflowDispatched"
    WORKFLOW_COMPLETED = "WorkflowCompleted"
    WORKFLOW_FAULTED = "WorkflowFaulted"
    WORKFLOW_TERMINATED = "WorkflowTerminated"
    WORKFLOW_COMPENSATION_FAILED = "WorkflowCompensationFailed"
    ACTIVITY_STARTED = "ActivityStarted"
    ACTIVITY_RETRIED = "ActivityRetried"
    ACTIVITY_COMPLETED = "ActivityCompleted"
    ACTIVITY_FAULTED = "ActivityFaulted"
    ACTIVITY_COMPENSATED = "ActivityCompensated"
    ITINERARY_REVISED = "ItineraryRevised"


TERMINAL_EVENTS: frozenset[EventType] = frozenset(
    {
        EventType.WORKFLOW_COMPLETED,
        EventType.WORKFLOW_FAULTED,
        EventType.WORKFLOW_TERMINATED,
        EventType.WORKFLOW_COMPENSATION_FAILED,
    }
)

#: Per-attempt events sent only to subscriptions that name them (see ``Subscription``).
OPT_IN_EVENTS: frozenset[EventType] = frozenset(EventType(name) for name in OPT_IN_EVENT_TYPES)

WorkflowStatus = Literal["completed", "faulted", "terminated", "compensation_failed"]

_STATUS: dict[EventType, WorkflowStatus] = {
    EventType.WORKFLOW_COMPLETED: "completed",
    EventType.WORKFLOW_FAULTED: "faulted",
    EventType.WORKFLOW_TERMINATED: "terminated",
    EventType.WORKFLOW_COMPENSATION_FAILED: "compensation_failed",
}


class WorkflowEvent(BaseModel):
    """One lifecycle event of a workflow, as delivered to subscription queues.

    ``id`` is the event's message id (stable across redeliveries and re-sends, so a store
    records each event once); ``step`` is the position of the step it is about in the
    workflow's execution order (0 = the first step that ran), for events about one step.
    """

    type: EventType
    correlation_id: str
    id: str | None = None
    timestamp: datetime = Field(default_factory=utcnow)
    activity: str | None = None
    step: int | None = None
    attempt: int | None = None
    duration: float | None = None
    retry_delay: float | None = None
    output: Any = None
    error: str | None = None
    fault: Fault | None = None
    reason: str | None = None
    added: list[ActivitySpec] = Field(default_factory=list)
    variables: dict[str, Any] = Field(default_factory=dict)
    activity_log: list[ActivityLogEntry] = Field(default_factory=list)
    compensated: list[str] = Field(default_factory=list)
    worker: str | None = None
    itinerary: list[ActivitySpec] = Field(default_factory=list)
    dispatcher: str | None = None


class WorkflowResult(BaseModel):
    """How a workflow ended: status, variables, outputs by activity, error, and the activity log."""

    correlation_id: str
    status: WorkflowStatus
    variables: dict[str, Any] = Field(default_factory=dict)
    outputs: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    fault: Fault | None = None
    reason: str | None = None
    activity_log: list[ActivityLogEntry] = Field(default_factory=list)
    compensated: list[str] = Field(default_factory=list)

    @property
    def output(self) -> Any:
        """The output of the last activity that ran, if any."""
        return self.activity_log[-1].output if self.activity_log else None

    @classmethod
    def from_event(cls, event: WorkflowEvent) -> WorkflowResult:
        """Build the result from a terminal event."""
        return cls(
            correlation_id=event.correlation_id,
            status=_STATUS[event.type],
            variables=event.variables,
            outputs={entry.name: entry.output for entry in event.activity_log},
            error=event.error,
            fault=event.fault,
            reason=event.reason,
            activity_log=event.activity_log,
            compensated=event.compensated,
        )
