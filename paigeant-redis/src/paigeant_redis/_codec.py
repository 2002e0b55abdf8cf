"""How messages are stored in stream entries: field encoding and decoding."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from paigeant import dead_letter_headers

__all__ = ["decode_entry", "delay_ms", "encode_headers", "parse_xread", "text"]

logger = logging.getLogger(__name__)


def text(value: Any) -> str:
    """``value`` as text: bytes decoded as UTF-8."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def decode_entry(
    entry_id: str, fields: Mapping[bytes, bytes]
) -> tuple[bytes, str, dict[str, str], int]:
    """Return body, message id, headers and attempt base of a stream entry's fields."""
    body = fields.get(b"body", b"")
    message_id = text(fields.get(b"message_id", entry_id))
    headers: dict[str, str] = {}
    raw = fields.get(b"headers")
    if raw:
        try:
            parsed = json.loads(raw)
            if not isinstance(parsed, dict):
                raise ValueError("headers are not a JSON object")
            headers = {str(k): str(v) for k, v in parsed.items()}
        except ValueError as exc:
            logger.warning(
                "entry %s of message %s has unreadable headers: %s", entry_id, message_id, exc
            )
    if b"dead_letter_reason" in fields:
        headers = dead_letter_headers(
            headers,
            reason=text(fields[b"dead_letter_reason"]),
            queue=text(fields.get(b"dead_letter_queue", b"")),
            attempt=_int(fields.get(b"dead_letter_attempt")),
            at=datetime.fromtimestamp(_int(fields.get(b"dead_letter_time_ms")) / 1000, UTC),
        )
    try:
        base = int(fields.get(b"attempt_base", b"0"))
    except ValueError:
        base = 0
    return body, message_id, headers, base


def _int(value: bytes | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def encode_headers(headers: Mapping[str, str] | None) -> str:
    """Serialize headers as the JSON object stored in the ``headers`` field."""
    return json.dumps(dict(headers or {}), separators=(",", ":"))


def delay_ms(delay: float) -> int:
    """A delay in whole milliseconds; any positive delay is at least 1 ms."""
    return max(1, math.ceil(delay * 1000)) if delay > 0 else 0


def parse_xread(response: Any) -> list[tuple[str, dict[bytes, bytes]]]:
    """Normalise an XREADGROUP reply (RESP2 list or RESP3 dict) to (entry id, fields) pairs."""
    if not response:
        return []
    streams: Iterable[Any] = response.items() if isinstance(response, dict) else response
    entries: list[tuple[str, dict[bytes, bytes]]] = []
    for _stream, items in streams:
        for entry_id, fields in items or ():
            if isinstance(fields, dict):
                entries.append((text(entry_id), fields))
            elif fields:
                flat = list(fields)
                entries.append((text(entry_id), dict(zip(flat[::2], flat[1::2], strict=True))))
    return entries
