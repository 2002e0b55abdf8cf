"""A workflow's steps as a timeline: bars proportional to duration, each attempt and retry marked.

Geometry is in SVG user units (the bar area is ``WIDTH`` wide), so the page draws it with SVG
attributes: the Content-Security-Policy forbids inline styles.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from paigeant import StepRecord, WorkflowRecord

from .render import duration_text

__all__ = ["WIDTH", "Lane", "Mark", "Segment", "Timeline", "build_timeline"]

#: Width of the bar area in SVG user units.
WIDTH = 1000.0
_MIN_BAR = 3.0
_ACTIVE = ("running", "compensating")


@dataclass(frozen=True)
class Segment:
    """A stretch of one lane: an attempt (``ok``, ``failed``, ``running``) or a wait before a retry."""

    x: float
    width: float
    kind: str
    title: str


@dataclass(frozen=True)
class Mark:
    """A moment on a lane: a retry decided, or a compensation that ran."""

    x: float
    kind: str
    title: str


@dataclass
class Lane:
    """One row of the timeline: a step (or a compensation) and what happened on it."""

    label: str
    status: str
    detail: str
    segments: list[Segment] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    step: StepRecord | None = None


@dataclass
class Timeline:
    """The lanes, the time they span and the axis labels."""

    lanes: list[Lane]
    span: float
    ticks: list[str]


class _Scale:
    def __init__(self, start: datetime, end: datetime) -> None:
        self.start = start
        self.span = max((end - start).total_seconds(), 1e-3)

    def x(self, moment: datetime) -> float:
        offset = (moment - self.start).total_seconds() / self.span * WIDTH
        return min(max(offset, 0.0), WIDTH)

    def segment(self, begin: datetime, end: datetime, kind: str, title: str) -> Segment:
        x = self.x(begin)
        width = max(self.x(end) - x, _MIN_BAR)
        return Segment(round(min(x, WIDTH - _MIN_BAR), 2), round(width, 2), kind, title)


def build_timeline(record: WorkflowRecord, now: datetime | None = None) -> Timeline:
    """The timeline of ``record``; a workflow still running extends to ``now``."""
    moments = [record.created_at, record.updated_at]
    for step in record.steps:
        moments += [m for m in (step.started_at, step.finished_at) if m is not None]
    moments += [c.at for c in record.compensations if c.at is not None]
    start = min(moments)
    end = record.finished_at or max(moments)
    if record.status in _ACTIVE:
        end = max(end, now or datetime.now(UTC))
    scale = _Scale(start, end)
    lanes = [_step_lane(step, scale, end) for step in record.steps]
    for comp in record.compensations:
        lane = Lane(f"↩ {comp.name}", comp.status, f"compensation {comp.status}")
        if comp.at is not None:
            lane.marks.append(
                Mark(round(scale.x(comp.at), 2), comp.status, f"{comp.name}: {comp.status}")
            )
        lanes.append(lane)
    ticks = [duration_text(scale.span * i / 4) or "0" for i in range(5)]
    ticks[0] = "0"
    return Timeline(lanes, scale.span, ticks)


def _step_lane(step: StepRecord, scale: _Scale, end: datetime) -> Lane:
    attempts = f"{step.attempts} attempt{'s' if step.attempts != 1 else ''}"
    parts = (step.status, attempts, duration_text(step.duration))
    detail = " · ".join(part for part in parts if part)
    lane = Lane(f"{step.index + 1}. {step.name}", step.status, detail, step=step)
    begin = step.started_at
    if begin is None and step.finished_at is not None and step.duration is not None:
        begin = step.finished_at - timedelta(seconds=step.duration)
    if begin is None:
        return lane  # nothing recorded about when it ran
    for retry in step.retries:
        failed_at = max(retry.at, begin)
        lane.segments.append(
            scale.segment(
                begin, failed_at, "failed", f"attempt {retry.attempt} failed: {retry.error or '?'}"
            )
        )
        lane.marks.append(
            Mark(
                round(scale.x(failed_at), 2),
                "retry",
                f"retry after attempt {retry.attempt}, in {duration_text(retry.delay) or '?'}",
            )
        )
        resume = failed_at + timedelta(seconds=retry.delay or 0.0)
        if retry.delay:
            lane.segments.append(
                scale.segment(failed_at, min(resume, end), "waiting", "waiting to retry")
            )
        begin = resume
    if step.status == "retrying" or begin > end:
        return lane  # the next attempt has not started
    finish = step.finished_at or end
    if step.finished_at is not None and step.duration is not None:  # the attempt's own time
        begin = max(begin, step.finished_at - timedelta(seconds=step.duration))
    kind = {"completed": "ok", "faulted": "failed"}.get(step.status, "running")
    last = step.attempts or 1
    lane.segments.append(
        scale.segment(begin, max(finish, begin), kind, f"attempt {last}: {step.status}")
    )
    return lane
