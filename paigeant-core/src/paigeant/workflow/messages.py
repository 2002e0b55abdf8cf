"""The routing-slip message: what travels inside every hop of a workflow (DESIGN section 4)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from ..transports.queues import validate_activity_name

__all__ = [
    "EVERY_EVENT",
    "OPT_IN_EVENT_TYPES",
    "SPEC_VERSION",
    "ActivityLogEntry",
    "ActivitySpec",
    "CompensateLogEntry",
    "DepsEnvelope",
    "Fault",
    "PaigeantMessage",
    "RetryPolicy",
    "RoutingSlip",
    "Subscription",
    "UtcDatetime",
    "as_utc",
    "hop_message_id",
    "utcnow",
]

SPEC_VERSION: Literal["1"] = "1"

#: Event types a subscription receives only when it names them (or ``EVERY_EVENT``): they are
#: sent once per step attempt, so an unmonitored slip builds none of them.
OPT_IN_EVENT_TYPES: frozenset[str] = frozenset({"ActivityStarted", "ActivityRetried"})
#: In ``Subscription.events``: every event type, the opt-in ones included.
EVERY_EVENT = "*"


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """``moment`` made timezone-aware: a naive one is taken as UTC, an aware one is kept."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


#: A datetime field that is always aware: a naive value (no UTC offset, as some senders write)
#: is taken as UTC, so times of one workflow always compare.
UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]


def hop_message_id(correlation_id: str, hop: int) -> str:
    """Return the deterministic message id of hop ``hop``: a re-forward after a crash reuses it."""
    return f"{correlation_id}.{hop}"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class RetryPolicy(_Model):
    """How often a failing activity is retried, with exponential backoff and jitter."""

    max_attempts: int = Field(default=3, ge=1)
    initial_delay: float = Field(default=1.0, ge=0)
    backoff: float = Field(default=2.0, ge=1)
    max_delay: float = Field(default=60.0, ge=0)
    jitter: float = Field(default=0.1, ge=0, le=1)

    def delay_for(self, attempt: int) -> float:
        """Return the delay before the retry that follows failed attempt ``attempt`` (1-based)."""
        base = min(self.initial_delay * self.backoff ** max(attempt - 1, 0), self.max_delay)
        if self.jitter:
            base *= 1 + random.uniform(-self.jitter, self.jitter)
        return max(base, 0.0)


class DepsEnvelope(_Model):
    """Serialized dependencies of a step: the import path of their class plus their data."""

    type: str
    data: dict[str, Any] = Field(default_factory=dict)


class ActivitySpec(_Model):
    """One step of an itinerary: the activity type (also its queue) and its inputs."""

    name: Annotated[str, AfterValidator(validate_activity_name)]
    arguments: dict[str, Any] = Field(default_factory=dict)
    prompt: str | None = None
    deps: DepsEnvelope | None = None
    retry: RetryPolicy | None = None
    timeout: float | None = Field(default=None, gt=0)

    @field_validator("deps", mode="before")
    @classmethod
    def _serialize_deps(cls, deps: Any) -> Any:
        if isinstance(deps, BaseModel) and not isinstance(deps, DepsEnvelope):
            from .deps import envelope_for

            return envelope_for(deps)
        return deps


class ActivityLogEntry(_Model):
    """A step that ran: its name, output, timing, attempt and the worker that ran it."""

    name: str
    output: Any = None
    started_at: UtcDatetime
    finished_at: UtcDatetime
    attempt: int
    worker: str


class CompensateLogEntry(_Model):
    """A completed step that has a compensation, with the output the compensation receives."""

    name: str
    output: Any = None
    log_index: int


class Fault(_Model):
    """Why a workflow faulted: the activity, the error type and its message."""

    activity: str
    error_type: str
    error: str
    attempt: int = 1


class Subscription(_Model):
    """A queue that receives a workflow's events.

    ``events`` lists the event types it receives. Empty means every event type except the
    opt-in ones (``OPT_IN_EVENT_TYPES``: ActivityStarted, ActivityRetried), which go only to a
    subscription that names them or lists ``"*"`` (``EVERY_EVENT``: every type, opt-in ones too).
    """

    queue: str
    events: list[str] = Field(default_factory=list)

    def wants(self, event: str) -> bool:
        """Whether this subscription receives events of type ``event``."""
        events = self.events
        if not events:
            return event not in OPT_IN_EVENT_TYPES
        return event in events or EVERY_EVENT in events


class RoutingSlip(_Model):
    """The itinerary still to run (head = current), the log of what ran, and shared variables."""

    itinerary: list[ActivitySpec] = Field(default_factory=list)
    activity_log: list[ActivityLogEntry] = Field(default_factory=list)
    compensate_log: list[CompensateLogEntry] = Field(default_factory=list)
    variables: dict[str, Any] = Field(default_factory=dict)
    subscriptions: list[Subscription] = Field(default_factory=list)
    fault: Fault | None = None
    compensated: list[str] = Field(default_factory=list)
    added_steps: int = 0


class PaigeantMessage(_Model):
    """The envelope of one hop: ids, routing slip, on-behalf-of token, trace headers, timestamps."""

    spec_version: Literal["1"] = SPEC_VERSION
    message_id: str
    correlation_id: str
    hop: int = Field(default=0, ge=0)
    routing_slip: RoutingSlip
    obo_token: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime = Field(default_factory=utcnow)

    @property
    def current(self) -> ActivitySpec | None:
        """The step at the head of the itinerary, if any."""
        itinerary = self.routing_slip.itinerary
        return itinerary[0] if itinerary else None
