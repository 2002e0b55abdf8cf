"""How paigeant messages travel as NATS messages: headers, size checks, delivery metadata.

nats-py strips header values and turns CR/LF into spaces, so user headers travel as one JSON
object (``Paigeant-Headers``, ASCII only) that round-trips exactly; the message id travels
verbatim when it is header-safe, else JSON-quoted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import NamedTuple

import orjson

from paigeant import MessageTooLargeError

__all__ = [
    "ATTEMPT_BASE",
    "DEAD_LETTER_ROOM",
    "DUE",
    "HEADERS",
    "MESSAGE_ID",
    "NATS_MSG_ID",
    "ForeignMessage",
    "Metadata",
    "check_size",
    "decode",
    "encode",
    "metadata",
    "payload_size",
]

#: The paigeant message id (verbatim, or a JSON string when it is not header-safe).
MESSAGE_ID = "Paigeant-Id"
#: The user headers: a compact JSON object (omitted when there are none).
HEADERS = "Paigeant-Headers"
#: Deliveries a copy already had before it existed (a delayed nack's copy; absent means 0).
ATTEMPT_BASE = "Paigeant-Attempt-Base"
#: Delay stream only: when the message is due, in Unix milliseconds.
DUE = "Paigeant-Due"
#: JetStream's deduplication id.
NATS_MSG_ID = "Nats-Msg-Id"

_ascii_json = json.JSONEncoder(separators=(",", ":")).encode
_SAFE_ID = re.compile(r"[!-~](?:[ -~]*[!-~])?")  # printable ASCII, no edge spaces
_FRAME = len(b"NATS/1.0\r\n") + len(b"\r\n")
#: Bytes of ``max_payload`` a publish leaves free, so that whatever paigeant publishes can be
#: dead-lettered (or copied for a delayed nack) whole, with the headers that adds.
DEAD_LETTER_ROOM = 4096


class ForeignMessage(Exception):
    """A message on a paigeant subject that paigeant did not write (or that is damaged)."""

    def __init__(self, reason: str, message_id: str | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.message_id = message_id


def encode(
    message_id: str,
    headers: Mapping[str, str] | None,
    *,
    attempt_base: int = 0,
    due_ms: int | None = None,
    dedup_id: str | None = None,
) -> dict[str, str]:
    """The NATS headers of a paigeant message."""
    if _SAFE_ID.fullmatch(message_id) and message_id[0] != '"':
        nats_headers = {MESSAGE_ID: message_id}
    else:
        nats_headers = {MESSAGE_ID: json.dumps(message_id)}
    if headers:
        nats_headers[HEADERS] = _headers_json(headers)
    if attempt_base:
        nats_headers[ATTEMPT_BASE] = str(int(attempt_base))
    if due_ms is not None:
        nats_headers[DUE] = str(int(due_ms))
    if dedup_id is not None:
        nats_headers[NATS_MSG_ID] = dedup_id
    return nats_headers


def _headers_json(headers: Mapping[str, str]) -> str:
    """Compact JSON of ``headers``, ASCII only (non-ASCII escaped as the standard library does)."""
    plain = headers if isinstance(headers, dict) else dict(headers)
    encoded = orjson.dumps(plain).decode()
    return encoded if encoded.isascii() else _ascii_json(plain)


def payload_size(body: bytes, headers: Mapping[str, str]) -> int:
    """Bytes ``body`` with ``headers`` takes of the server's ``max_payload``."""
    size = len(body) + _FRAME
    for key, value in headers.items():
        size += len(key) + len(value.encode()) + 4
    return size


def check_size(
    body: bytes, headers: Mapping[str, str], max_payload: int, queue: str, *, reserve: int = 0
) -> None:
    """Raise MessageTooLargeError unless body plus headers fit ``max_payload - reserve``.

    nats-py checks the body only; a frame over the limit makes the server drop the connection.
    """
    size = payload_size(body, headers)
    if size > max_payload - reserve:
        kept = f", less the {reserve} bytes kept for a dead letter's headers," if reserve else ""
        raise MessageTooLargeError(
            f"message to {queue!r} is {size} bytes with its headers, over the NATS server's "
            f"max_payload of {max_payload} bytes{kept}: raise `max_payload` in nats-server.conf "
            "(for example `max_payload: 8MB`; it must exceed PAIGEANT_MAX_MESSAGE_BYTES plus "
            "a few KiB of headers), or send smaller messages"
        )


def decode(headers: Mapping[str, str] | None) -> tuple[str, dict[str, str], int]:
    """Message id, user headers and attempt base of a received message; ForeignMessage if none."""
    if not headers or MESSAGE_ID not in headers:
        fallback = headers.get(NATS_MSG_ID) if headers else None
        raise ForeignMessage(
            f"not a paigeant message: it has no {MESSAGE_ID} header (something other than "
            "paigeant published to this queue's subject)",
            fallback,
        )
    raw_id = headers[MESSAGE_ID]
    try:
        message_id = json.loads(raw_id) if raw_id.startswith('"') else raw_id
        raw = headers.get(HEADERS)
        user = orjson.loads(raw) if raw else {}
        if not isinstance(message_id, str) or not isinstance(user, dict):
            raise ValueError("wrong JSON types")
        base = int(headers.get(ATTEMPT_BASE) or 0)
    except ValueError as exc:
        raise ForeignMessage(f"damaged paigeant headers ({exc})", raw_id) from None
    return message_id, {str(k): str(v) for k, v in user.items()}, base


class Metadata(NamedTuple):
    """What a JetStream delivery's reply subject says about it."""

    stream: str
    consumer: str
    num_delivered: int
    stream_seq: int
    timestamp_ns: int
    #: Messages the consumer still had to deliver when this one was sent.
    num_pending: int


def metadata(reply: str) -> Metadata:
    """Parse ``$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>``.

    Also the newer form with domain and account hash before the stream.
    """
    tokens = reply.split(".")
    at = 2 if len(tokens) == 9 else 4
    if len(tokens) < 9 or tokens[0] != "$JS" or tokens[1] != "ACK":
        raise ValueError(f"not a JetStream delivery: reply subject {reply!r}")
    return Metadata(
        tokens[at],
        tokens[at + 1],
        int(tokens[at + 2]),
        int(tokens[at + 3]),
        int(tokens[at + 5]),
        int(tokens[at + 6]),
    )
