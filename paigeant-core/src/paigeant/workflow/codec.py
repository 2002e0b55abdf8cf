"""Canonical JSON encoding of messages: the same message always gives the same bytes."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ValidationError

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


def _canonical_encoder(*, check_circular: bool) -> json.JSONEncoder:
    return json.JSONEncoder(
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        check_circular=check_circular,
    )


#: Built once (``json.dumps`` with options builds an encoder on every call).
_ENCODER = _canonical_encoder(check_circular=True)
#: For pydantic's dumps: fresh trees that cannot hold a cycle (pydantic refuses to dump one).
_TREE_ENCODER = _canonical_encoder(check_circular=False)


def canonical_json(value: Any) -> bytes:
    """Encode a JSON-able value with sorted keys and no whitespace, as UTF-8."""
    return _encode(_ENCODER, value)


def _encode(encoder: json.JSONEncoder, value: Any) -> bytes:
    try:
        return encoder.encode(value).encode("utf-8")
    except ValueError as exc:
        raise ValueError(f"value is not canonical JSON: {exc}") from exc


def serialize_model(model: BaseModel) -> bytes:
    """Return the canonical JSON bytes of a wire model (a message, an event), None fields left out."""
    return _encode(_TREE_ENCODER, model.model_dump(mode="json", exclude_none=True))


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
