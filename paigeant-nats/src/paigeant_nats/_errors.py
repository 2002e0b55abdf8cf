"""Errors of the NATS transport and the reading of JetStream's replies (PubAcks, API errors)."""

from __future__ import annotations

import json
from typing import Any

from nats.aio.msg import Msg

from paigeant import PaigeantError

__all__ = [
    "NoStreamError",
    "PublishRefusedError",
    "QueueFullError",
    "is_no_responders",
    "read_pub_ack",
]

#: JetStream's "store failed" error code; "maximum messages/bytes exceeded" (a full
#: ``discard=new`` stream) is one of its descriptions.
STREAM_STORE_FAILED = 10077


class PublishRefusedError(PaigeantError):
    """JetStream refused a publish (its reply carried an error); ``err_code`` says which."""

    def __init__(self, message: str, *, code: int = 0, err_code: int = 0) -> None:
        """Record ``message`` and JetStream's ``code`` (HTTP-like) and ``err_code``."""
        super().__init__(message)
        self.code = code
        self.err_code = err_code


class QueueFullError(PublishRefusedError):
    """The queue's stream holds ``max_queue_messages`` or ``max_queue_bytes``: nothing is dropped.

    Consume (or delete) some of its messages, or raise the limits; the publish was not stored.
    """


class NoStreamError(Exception):
    """No stream captures the subject (a "no responders" reply): the queue must be created."""


def is_no_responders(msg: Msg) -> bool:
    """Whether ``msg`` is the server's "no responders" status (503 with an empty body)."""
    headers = msg.headers
    return not msg.data and headers is not None and headers.get("Status") == "503"


def read_pub_ack(msg: Msg, what: str) -> bool:
    """Check a PubAck for ``what``; True if it was a duplicate (deduplicated by Nats-Msg-Id).

    Raises NoStreamError for "no responders", QueueFullError when the stream is full, and
    PublishRefusedError for any other refusal.
    """
    data = msg.data
    if data.startswith(b'{"stream"'):
        return b'"duplicate"' in data and _parse(data).get("duplicate") is True
    if is_no_responders(msg):
        raise NoStreamError(what)
    reply = _parse(data)
    error = reply.get("error")
    if not isinstance(error, dict):
        if "stream" in reply:
            return reply.get("duplicate") is True
        raise PublishRefusedError(f"{what}: unexpected reply from JetStream: {data[:200]!r}")
    code, err_code = int(error.get("code", 0)), int(error.get("err_code", 0))
    description = error.get("description", "refused")
    if err_code == STREAM_STORE_FAILED and "maximum" in str(description):
        raise QueueFullError(
            f"{what}: the queue is full ({description}); nothing was stored. Consume or delete "
            "messages, or raise max_queue_messages / max_queue_bytes",
            code=code,
            err_code=err_code,
        )
    raise PublishRefusedError(
        f"{what}: JetStream refused it ({description}, err_code {err_code})",
        code=code,
        err_code=err_code,
    )


def _parse(data: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(data) if data else {}
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
