"""The timeline's geometry: bars proportional to duration, retries and waits marked."""

from __future__ import annotations

from datetime import timedelta

import pytest

from paigeant import EventType, WorkflowRecord
from paigeant.testing import WorkflowEvents
from paigeant_dashboard.timeline import WIDTH, build_timeline


def fold(events: list) -> WorkflowRecord:  # type: ignore[type-arg]
    record = WorkflowRecord.from_event(events[0])
    for event in events[1:]:
        record.apply(event)
    return record


def test_bars_are_proportional_to_duration_with_retries_marked() -> None:
    w = WorkflowEvents()
    events = [w.dispatched(["a", "b"])]
    events += [w.started(0, "a"), w.completed(0, "a", 1, duration=0.25)]
    events += [w.started(1, "b"), w.retried(1, "b", 1), w.started(1, "b", 2)]
    events += [w.completed(1, "b", 2, attempt=2, duration=0.5)]
    events.append(w.finished(EventType.WORKFLOW_COMPLETED, 2))
    record = fold(events)
    timeline = build_timeline(record)
    span = (record.finished_at - record.created_at).total_seconds()  # type: ignore[operator]
    assert timeline.span == pytest.approx(span)
    first, second = timeline.lanes
    (ok,) = first.segments
    assert ok.kind == "ok" and ok.width == pytest.approx(0.25 / span * WIDTH, abs=0.01)
    kinds = [segment.kind for segment in second.segments]
    assert kinds == ["failed", "waiting", "ok"]
    assert second.segments[-1].width == pytest.approx(0.5 / span * WIDTH, abs=0.01)
    waiting = second.segments[1]
    assert waiting.width == pytest.approx(0.25 / span * WIDTH, abs=0.01)  # the retry delay
    (mark,) = second.marks
    assert mark.kind == "retry" and mark.x == pytest.approx(waiting.x, abs=0.01)
    assert "attempt 1 failed: RuntimeError: boom" in second.segments[0].title
    assert first.detail == "completed · 1 attempt · 250 ms"
    assert all(0 <= s.x <= WIDTH and s.x + s.width <= WIDTH + 0.01 for s in second.segments)
    assert timeline.ticks[0] == "0" and len(timeline.ticks) == 5


def test_a_running_step_extends_to_now_and_a_waiting_one_has_no_attempt_bar() -> None:
    w = WorkflowEvents()
    events = [w.dispatched(["a", "b"]), w.started(0, "a")]
    record = fold(events)
    now = record.updated_at + timedelta(seconds=9)
    (lane,) = build_timeline(record, now).lanes
    (running,) = lane.segments
    assert running.kind == "running" and running.x + running.width == pytest.approx(WIDTH)
    record = fold([*events, w.retried(0, "a", 1)])
    (lane,) = build_timeline(record, record.updated_at).lanes
    assert [s.kind for s in lane.segments] == ["failed", "waiting"]


def test_compensations_are_lanes_with_a_mark() -> None:
    w = WorkflowEvents()
    events = [w.dispatched(["a", "b"]), w.completed(0, "a"), w.faulted(1, "b")]
    events += [
        w.compensated(0, "a", 3),
        w.finished(EventType.WORKFLOW_FAULTED, 3, compensated=["a"]),
    ]
    lanes = build_timeline(fold(events)).lanes
    assert [lane.label for lane in lanes] == ["1. a", "2. b", "↩ a"]
    assert lanes[1].status == "faulted" and lanes[1].segments == []  # no start recorded
    assert [m.kind for m in lanes[2].marks] == ["compensated"]
