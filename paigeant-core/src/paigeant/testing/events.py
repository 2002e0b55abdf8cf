"""Realistic workflow events for store tests: ``WorkflowEvents(cid).completed(...)`` and friends."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from ..workflow.events import EventType, WorkflowEvent
from ..workflow.messages import ActivityLogEntry, ActivitySpec, Fault

__all__ = ["WorkflowEvents"]

_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


class WorkflowEvents:
    """Builds the events one workflow would emit, with stable ids and increasing timestamps."""

    def __init__(self, correlation_id: str | None = None, *, start: datetime | None = None) -> None:
        """Events of workflow ``correlation_id`` (default: a new uuid), from ``start`` on."""
        self.correlation_id = correlation_id or str(uuid.uuid4())
        self._clock = start or _EPOCH
        self.log: list[ActivityLogEntry] = []
        self.fault: Fault | None = None

    def _tick(self, seconds: float = 0.5) -> datetime:
        self._clock += timedelta(seconds=seconds)
        return self._clock

    def _event(self, kind: EventType, key: str, **fields: Any) -> WorkflowEvent:
        fields.setdefault("timestamp", self._tick())
        return WorkflowEvent(
            type=kind,
            correlation_id=self.correlation_id,
            id=f"{self.correlation_id}.{key}",
            **fields,
        )

    def dispatched(
        self, activities: list[str], variables: dict[str, Any] | None = None
    ) -> WorkflowEvent:
        """WorkflowDispatched with an itinerary of ``activities``."""
        return self._event(
            EventType.WORKFLOW_DISPATCHED,
            "0.WorkflowDispatched",
            itinerary=[
                ActivitySpec(name=name, arguments={"n": i}) for i, name in enumerate(activities)
            ],
            variables=dict(variables or {}),
            dispatcher="tests:1",
        )

    def started(self, step: int, name: str, attempt: int = 1) -> WorkflowEvent:
        """ActivityStarted for ``attempt`` of step ``step``."""
        return self._event(
            EventType.ACTIVITY_STARTED,
            f"{step}.ActivityStarted.{attempt}",
            activity=name,
            step=step,
            attempt=attempt,
            worker=f"worker-{attempt}",
        )

    def retried(self, step: int, name: str, attempt: int, error: str = "boom") -> WorkflowEvent:
        """ActivityRetried after failed ``attempt``."""
        return self._event(
            EventType.ACTIVITY_RETRIED,
            f"{step}.ActivityRetried.{attempt}",
            activity=name,
            step=step,
            attempt=attempt,
            error=f"RuntimeError: {error}",
            retry_delay=0.25 * attempt,
            worker=f"worker-{attempt}",
        )

    def completed(
        self, step: int, name: str, output: Any = None, attempt: int = 1, duration: float = 0.25
    ) -> WorkflowEvent:
        """ActivityCompleted (and the step's entry in the log that terminal events carry)."""
        finished = self._tick()
        self.log.append(
            ActivityLogEntry(
                name=name,
                output=output,
                started_at=finished - timedelta(seconds=duration),
                finished_at=finished,
                attempt=attempt,
                worker=f"worker-{attempt}",
            )
        )
        return self._event(
            EventType.ACTIVITY_COMPLETED,
            f"{step}.ActivityCompleted",
            timestamp=finished,
            activity=name,
            step=step,
            attempt=attempt,
            duration=duration,
            output=output,
            worker=f"worker-{attempt}",
        )

    def faulted(self, step: int, name: str, attempt: int = 1, error: str = "boom") -> WorkflowEvent:
        """ActivityFaulted: the step failed for good."""
        fault = Fault(activity=name, error_type="RuntimeError", error=error, attempt=attempt)
        self.fault = fault
        return self._event(
            EventType.ACTIVITY_FAULTED,
            f"{step}.ActivityFaulted",
            activity=name,
            step=step,
            attempt=attempt,
            error=f"RuntimeError: {error}",
            fault=fault,
            worker=f"worker-{attempt}",
        )

    def compensated(self, step: int, name: str, hop: int) -> WorkflowEvent:
        """ActivityCompensated for the step at ``step`` (sent by hop ``hop``)."""
        return self._event(
            EventType.ACTIVITY_COMPENSATED,
            f"{hop}.ActivityCompensated",
            activity=name,
            step=step,
            attempt=1,
            worker="worker-c",
        )

    def revised(self, step: int, name: str, added: list[str]) -> WorkflowEvent:
        """ItineraryRevised: the step at ``step`` added ``added`` after itself."""
        return self._event(
            EventType.ITINERARY_REVISED,
            f"{step}.ItineraryRevised",
            activity=name,
            step=step,
            added=[ActivitySpec(name=extra) for extra in added],
        )

    def finished(
        self,
        kind: EventType,
        hop: int,
        *,
        variables: dict[str, Any] | None = None,
        compensated: list[str] | None = None,
        error: str | None = None,
        reason: str | None = None,
        activity: str | None = None,
        step: int | None = None,
    ) -> WorkflowEvent:
        """A terminal event carrying the log of what ran."""
        fault = self.fault
        return self._event(
            kind,
            f"{hop}.{kind}",
            variables=dict(variables or {}),
            activity_log=list(self.log),
            compensated=list(compensated or []),
            error=error
            if error is not None
            else (f"RuntimeError: {fault.error}" if fault else None),
            fault=fault,
            reason=reason,
            activity=activity,
            step=step,
            worker="worker-1",
        )
