"""W3C trace context ids: well-formed, fresh per call, continued from the parent."""

from __future__ import annotations

import re

import pytest

from paigeant.workflow.tracing import child_traceparent, new_traceparent, trace_id

W3C = re.compile(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")


def test_new_traceparents_are_well_formed_and_distinct() -> None:
    parents = {new_traceparent() for _ in range(1000)}
    assert len(parents) == 1000
    for parent in parents:
        assert W3C.fullmatch(parent), parent
        assert trace_id(parent) != "0" * 32
        assert parent.split("-")[2] != "0" * 16


def test_child_keeps_the_trace_and_flags_with_a_new_span() -> None:
    parent = "00-" + "a" * 32 + "-" + "b" * 16 + "-00"
    child = child_traceparent(parent)
    assert W3C.fullmatch(child)
    assert trace_id(child) == "a" * 32
    assert child.endswith("-00")
    assert child.split("-")[2] != "b" * 16


@pytest.mark.parametrize("parent", [None, "", "garbage", "00-" + "A" * 32 + "-" + "b" * 16 + "-01"])
def test_missing_or_bad_parent_starts_a_new_trace(parent: str | None) -> None:
    child = child_traceparent(parent)
    assert W3C.fullmatch(child)
    assert trace_id(child) != trace_id(parent)
