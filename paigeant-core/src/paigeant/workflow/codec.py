"""Canonical JSON encoding of messages: the same message always gives the same bytes."""

from __future__ import annotations

import json
import math
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticSerializationError, to_jsonable_python

from ..errors import MessageTooLargeError
from ..settings import max_message_bytes
from .messages import PaigeantMessage

__all__ = [
    "MalformedMessageError",
    "canonical_json",
    "check_size",
    "decode_message",
    "encode_message",
    "parse_message",
    "serialize_message",
    "serialize_model",
]


class MalformedMessageError(ValueError):
    """Bytes that are not a valid paigeant message."""


#: orjson's canonical form: sorted keys, no whitespace, UTF-8, UTC datetimes ending in ``Z``.
_ORJSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_UTC_Z
#: For what orjson refuses (keys that are not strings, integers beyond 64 bits, nesting deeper
#: than 255): the same sorted, compact form from the standard library, built once
#: (``json.dumps`` builds one per call), over pydantic's JSON form of the value (keys made
#: strings, as pydantic's JSON mode always did; keys that then collide keep the last value).
_FALLBACK = json.JSONEncoder(
    sort_keys=True,
    separators=(",", ":"),
    ensure_ascii=False,
    allow_nan=False,
    default=to_jsonable_python,
)


def canonical_json(value: Any) -> bytes:
    """Encode a JSON-able value with sorted keys and no whitespace, as UTF-8.

    The same value always gives the same bytes. NaN and infinities are refused
    (``ValueError``): JSON has no such numbers.
    """
    try:
        data = orjson.dumps(value, default=to_jsonable_python, option=_ORJSON_OPTIONS)
    except TypeError:
        data = _fallback(value)
    if b"null" in data and _has_non_finite(value):  # orjson writes NaN and infinities as null
        raise ValueError("value is not canonical JSON: NaN and infinities are not JSON numbers")
    return data


def _fallback(value: Any) -> bytes:
    try:
        try:
            plain = to_jsonable_python(value)
        except (PydanticSerializationError, ValueError):  # too deep for pydantic: plain JSON?
            plain = value
        return _FALLBACK.encode(plain).encode("utf-8")
    except (TypeError, ValueError, PydanticSerializationError) as exc:
        raise ValueError(f"value is not canonical JSON: {exc}") from exc


def _has_non_finite(value: Any) -> bool:
    """Whether a float NaN or infinity hides anywhere in ``value``, objects orjson converts too."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                return True
        elif isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, (list, tuple)):
            pending.extend(item)
        elif not isinstance(item, (str, int, type(None))):
            try:
                pending.append(to_jsonable_python(item))  # a dataclass, a model: its JSON form
            except PydanticSerializationError:
                continue  # orjson encoded it natively: nothing pydantic can look into
    return False


def serialize_model(model: BaseModel) -> bytes:
    """Return the canonical JSON bytes of a wire model (a message, an event), None fields left out."""
    return canonical_json(model.model_dump(exclude_none=True))


def check_size(data: bytes, limit: int | None = None) -> None:
    """Raise MessageTooLargeError when ``data`` is over the limit (``PAIGEANT_MAX_MESSAGE_BYTES``)."""
    limit = max_message_bytes() if limit is None else limit
    if len(data) > limit:
        raise MessageTooLargeError(
            f"message is {len(data)} bytes, over the limit of {limit} bytes "
            "(raise PAIGEANT_MAX_MESSAGE_BYTES or keep large data out of the routing slip)"
        )


def encode_message(message: PaigeantMessage, *, limit: int | None = None) -> bytes:
    """Return the canonical JSON bytes of ``message``, enforcing the size limit."""
    data = serialize_message(message)
    check_size(data, limit)
    return data


def serialize_message(message: PaigeantMessage) -> bytes:
    """Return the canonical JSON bytes of ``message``; ``Wire.seal`` checks their size on send."""
    return serialize_model(message)


def decode_message(data: bytes, *, limit: int | None = None) -> PaigeantMessage:
    """Parse bytes into a PaigeantMessage, enforcing the size limit; MalformedMessageError if bad."""
    check_size(data, limit)
    return parse_message(data)


def parse_message(data: bytes) -> PaigeantMessage:
    """Parse bytes whose size was already checked (``Wire.open`` does on receipt)."""
    try:
        return PaigeantMessage.model_validate_json(data)
    except ValidationError as exc:
        raise MalformedMessageError(f"not a valid paigeant message: {exc}") from exc
