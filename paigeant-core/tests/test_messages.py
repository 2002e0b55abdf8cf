"""Message models, canonical encoding, deterministic ids, name validation and the size limit."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paigeant.errors import MessageTooLargeError
from paigeant.transports.queues import activity_queue, compensate_queue, dead_letter_queue
from paigeant.workflow.codec import (
    MalformedMessageError,
    canonical_json,
    decode_message,
    encode_message,
)
from paigeant.workflow.messages import (
    ActivityLogEntry,
    ActivitySpec,
    PaigeantMessage,
    RetryPolicy,
    RoutingSlip,
    hop_message_id,
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
names = st.from_regex(r"[A-Za-z0-9_-]{1,12}", fullmatch=True)
specs = st.builds(
    ActivitySpec,
    name=names,
    arguments=st.dictionaries(st.text(max_size=8), json_values, max_size=3),
    prompt=st.none() | st.text(max_size=30),
    retry=st.none() | st.builds(RetryPolicy, max_attempts=st.integers(1, 9)),
    timeout=st.none() | st.floats(min_value=0.1, max_value=100),
)
stamp = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def _message(itinerary: list[ActivitySpec], variables: dict[str, Any], hop: int) -> PaigeantMessage:
    return PaigeantMessage(
        message_id=hop_message_id("cid", hop),
        correlation_id="cid",
        hop=hop,
        routing_slip=RoutingSlip(
            itinerary=itinerary,
            variables=variables,
            activity_log=[
                ActivityLogEntry(
                    name="a",
                    output=variables,
                    started_at=stamp,
                    finished_at=stamp,
                    attempt=1,
                    worker="w",
                )
            ],
        ),
        obo_token=None,
        headers={"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"},
        created_at=stamp,
        sent_at=stamp,
    )


@settings(max_examples=150, deadline=None)
@given(
    itinerary=st.lists(specs, min_size=1, max_size=4),
    variables=st.dictionaries(st.text(max_size=8), json_values, max_size=5),
    hop=st.integers(0, 1000),
)
def test_round_trip_is_lossless_and_byte_stable(
    itinerary: list[ActivitySpec], variables: dict[str, Any], hop: int
) -> None:
    message = _message(itinerary, variables, hop)
    data = encode_message(message)
    decoded = decode_message(data)
    assert decoded == message
    assert encode_message(decoded) == data


@given(variables=st.dictionaries(st.text(max_size=8), json_values, min_size=2, max_size=6))
def test_key_order_does_not_change_the_bytes(variables: dict[str, Any]) -> None:
    reordered = dict(reversed(list(variables.items())))
    spec = ActivitySpec(name="a")
    assert encode_message(_message([spec], variables, 1)) == encode_message(
        _message([spec], reordered, 1)
    )


def test_canonical_json_is_sorted_and_compact() -> None:
    assert (
        canonical_json({"b": 1, "a": [1, {"d": None, "c": "é"}]})
        == '{"a":[1,{"c":"é","d":null}],"b":1}'.encode()
    )


@dataclass
class _Point:
    x: float


@pytest.mark.parametrize(
    "value",
    [
        {"x": float("nan")},
        [1.0, {"deep": [float("inf")]}],
        (None, -math.inf),
        {"point": _Point(float("nan"))},
    ],
    ids=["nan", "nested-infinity", "tuple", "in-a-dataclass"],
)
def test_canonical_json_rejects_nan_and_infinities(value: Any) -> None:
    with pytest.raises(ValueError, match="canonical JSON: NaN and infinities"):
        canonical_json(value)


def test_canonical_json_keeps_nulls_that_are_nulls() -> None:
    assert canonical_json({"a": None, "b": [1.5, None]}) == b'{"a":null,"b":[1.5,null]}'
    # beside a null, a value only orjson understands (pydantic cannot look into it)
    assert canonical_json({"a": None, "f": orjson.Fragment(b"[1]")}) == b'{"a":null,"f":[1]}'


def test_canonical_json_is_stable_through_a_round_trip() -> None:
    value = {"f": [1e16, 0.1, -0.0, 1e-7, 1e-5], "s": "é\u2028\n", "k": {"2": 1, "10": 2}}
    once = canonical_json(value)
    assert once.startswith(b'{"f":[1e+16,0.1,-0.0,1e-7,0.00001]')
    assert canonical_json(json.loads(once)) == once


def test_canonical_json_encodes_what_orjson_refuses_the_same_way_every_time() -> None:
    value = {"big": 2**70, "deep": [[[[1]]]], "b": 0.5}
    once = canonical_json(value)
    assert once == b'{"b":0.5,"big":1180591620717411303424,"deep":[[[[1]]]]}'
    assert canonical_json(json.loads(once)) == once
    nested: Any = 1
    for _ in range(300):  # deeper than orjson's 255 levels
        nested = [nested]
    assert canonical_json(nested) == b"[" * 300 + b"1" + b"]" * 300


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ({1: "a", "b": 2}, b'{"1":"a","b":2}'),
        ({1: "a", "b": 2, "big": 2**70}, b'{"1":"a","b":2,"big":1180591620717411303424}'),
        ({(1, 2): "x"}, b'{"1,2":"x"}'),
        ({True: 1, "z": 2}, b'{"true":1,"z":2}'),
        ({float("nan"): 1}, b'{"nan":1}'),
        ({"1": "b", 1: "a"}, b'{"1":"a"}'),  # keys that collide as strings: the last one wins
    ],
    ids=["int-key", "int-key-and-big-int", "tuple-key", "bool-key", "nan-key", "colliding"],
)
def test_canonical_json_makes_keys_strings_as_pydantic_does(value: Any, encoded: bytes) -> None:
    assert canonical_json(value) == encoded
    assert canonical_json(json.loads(encoded)) == encoded
    once = canonical_json({1: "a", "1": "b"})
    assert once.count(b'"1"') == 1, f"duplicate keys: {once!r}"


def test_a_message_with_non_string_keys_round_trips_byte_stable() -> None:
    message = _message([ActivitySpec(name="a", arguments={"m": {1: "x", 2: [3]}})], {}, 1)
    data = encode_message(message)
    assert b'{"1":"x","2":[3]}' in data
    assert encode_message(decode_message(data)) == data


def test_canonical_json_names_what_cannot_be_encoded() -> None:
    with pytest.raises(ValueError, match="canonical JSON"):
        canonical_json({"x": object()})


def test_message_id_is_deterministic_per_hop() -> None:
    assert hop_message_id("abc", 3) == hop_message_id("abc", 3)
    assert hop_message_id("abc", 3) != hop_message_id("abc", 4)
    assert hop_message_id("abc", 3) != hop_message_id("abd", 3)


@pytest.mark.parametrize("bad", ["", "has space", "dot.ted", "slash/x", "ü", "a*"])
def test_invalid_activity_names_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid activity name"):
        ActivitySpec(name=bad)
    with pytest.raises(ValueError, match="invalid activity name"):
        activity_queue(bad)


def test_queue_names(monkeypatch: pytest.MonkeyPatch) -> None:
    assert activity_queue("create-account") == "paigeant.create-account"
    assert compensate_queue("x") == "paigeant.x.compensate"
    assert dead_letter_queue("paigeant.x") == "paigeant.x.dead-letter"
    monkeypatch.setenv("PAIGEANT_NAMESPACE", "acme")
    assert activity_queue("x") == "acme.x"


def test_size_limit_on_encode_and_decode(monkeypatch: pytest.MonkeyPatch) -> None:
    message = _message([ActivitySpec(name="a")], {"blob": "x" * 5000}, 0)
    monkeypatch.setenv("PAIGEANT_MAX_MESSAGE_BYTES", "4096")
    with pytest.raises(MessageTooLargeError, match="over the limit of 4096 bytes"):
        encode_message(message)
    data = encode_message(message, limit=1 << 20)
    with pytest.raises(MessageTooLargeError, match="PAIGEANT_MAX_MESSAGE_BYTES"):
        decode_message(data)


def test_default_size_limit_is_one_mebibyte() -> None:
    message = _message([ActivitySpec(name="a")], {"blob": "x" * (1024 * 1024)}, 0)
    with pytest.raises(MessageTooLargeError, match="1048576"):
        encode_message(message)


@pytest.mark.parametrize(
    "data",
    [b"not json", b"{}", b'{"message_id": 1}', json.dumps({"spec_version": "9"}).encode()],
)
def test_malformed_bytes_raise_a_clear_error(data: bytes) -> None:
    with pytest.raises(MalformedMessageError, match="not a valid paigeant message"):
        decode_message(data)


def test_retry_policy_backoff_grows_and_is_capped() -> None:
    policy = RetryPolicy(max_attempts=5, initial_delay=1.0, backoff=2.0, max_delay=5.0, jitter=0)
    assert [policy.delay_for(a) for a in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 5.0]
    jittered = RetryPolicy(initial_delay=1.0, jitter=0.5)
    delays = {jittered.delay_for(1) for _ in range(50)}
    assert all(0.5 <= d <= 1.5 for d in delays) and len(delays) > 1


def test_envelope_grows_linearly_with_steps() -> None:
    sizes = []
    for steps in (10, 20, 40):
        message = _message([ActivitySpec(name=f"s{i}") for i in range(steps)], {}, 0)
        sizes.append(len(encode_message(message)))
    assert sizes[2] - sizes[1] == pytest.approx(2 * (sizes[1] - sizes[0]), rel=0.05)


def test_naive_times_in_events_and_logs_are_taken_as_utc() -> None:
    from datetime import timedelta, timezone

    from paigeant import WorkflowEvent

    event = WorkflowEvent.model_validate_json(
        '{"type": "WorkflowCompleted", "correlation_id": "c", "timestamp": "2026-01-01T10:00:00",'
        ' "activity_log": [{"name": "a", "started_at": "2026-01-01T09:59:59", "attempt": 1,'
        ' "finished_at": "2026-01-01T10:00:00+02:00", "worker": "w"}]}'
    )
    assert event.timestamp == datetime(2026, 1, 1, 10, tzinfo=UTC)
    entry = event.activity_log[0]
    assert entry.started_at.tzinfo is UTC
    assert entry.finished_at.utcoffset() == timedelta(hours=2), "an aware time was changed"
    assert entry.finished_at < event.timestamp  # comparable: no TypeError
    assert WorkflowEvent(type="WorkflowCompleted", correlation_id="c").timestamp.tzinfo is not None
    aware = datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=-5)))
    assert (
        WorkflowEvent(type="WorkflowCompleted", correlation_id="c", timestamp=aware).timestamp
        == aware
    )
