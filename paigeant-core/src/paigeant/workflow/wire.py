"""The wire format: canonical JSON bodies, a detached JWS header, size limits on both ends."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from ..errors import MessageTooLargeError, SignatureError
from ..security.signer import Signer
from ..settings import max_message_bytes
from ..transports.base import Delivery, Outgoing
from .codec import canonical_json, check_size
from .tracing import TRACEPARENT

__all__ = [
    "CORRELATION_HEADER",
    "SIGNATURE_HEADER",
    "RejectedMessage",
    "Wire",
]

SIGNATURE_HEADER = "paigeant-signature"
CORRELATION_HEADER = "paigeant-correlation-id"


class RejectedMessage(Exception):
    """A delivery that must be dead-lettered, with the reason to record."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Wire:
    """Seals outgoing bodies (size check, signature) and opens incoming deliveries (verify first)."""

    def __init__(self, signer: Signer | None, *, max_bytes: int | None = None) -> None:
        """Use ``signer`` (None: unsigned) and a size limit (default ``PAIGEANT_MAX_MESSAGE_BYTES``)."""
        self.signer = signer
        self.max_bytes = max_message_bytes() if max_bytes is None else max_bytes

    def seal(
        self,
        queue: str,
        body: bytes,
        *,
        message_id: str,
        correlation_id: str,
        traceparent: str | None,
        delay: float = 0.0,
    ) -> Outgoing:
        """Return the Outgoing for canonical ``body``: size-checked, signed, with trace headers."""
        headers = self._headers(body, correlation_id, traceparent)
        return Outgoing(queue, body, message_id, headers, delay)

    def seal_for(
        self,
        queues: Sequence[str],
        body: bytes,
        *,
        message_id: str,
        correlation_id: str,
        traceparent: str | None,
        delay: float = 0.0,
    ) -> list[Outgoing]:
        """Seal ``body`` once (size check, signature) and address it to each of ``queues``."""
        headers = self._headers(body, correlation_id, traceparent)
        return [Outgoing(queue, body, message_id, headers, delay) for queue in queues]

    def _headers(self, body: bytes, correlation_id: str, traceparent: str | None) -> dict[str, str]:
        """Check ``body``'s size and return its headers: correlation id, trace, signature."""
        check_size(body, self.max_bytes)
        headers = {CORRELATION_HEADER: correlation_id}
        if traceparent:
            headers[TRACEPARENT] = traceparent
        if self.signer is not None:
            headers[SIGNATURE_HEADER] = self.signer.sign(body)
        return headers

    def open(self, delivery: Delivery) -> bytes:
        """Return the verified body of ``delivery``; raise RejectedMessage with a reason otherwise."""
        return self.open_body(delivery.body, delivery.headers)

    def open_body(self, body: bytes, headers: Mapping[str, str]) -> bytes:
        """Check size and signature of ``body`` before anything parses it into user code."""
        try:
            check_size(body, self.max_bytes)
        except MessageTooLargeError as exc:
            raise RejectedMessage(f"message too large: {exc}") from None
        if self.signer is None:
            return body
        signature = headers.get(SIGNATURE_HEADER, "")
        try:
            self.signer.verify(body, signature)
            return body
        except SignatureError as exc:
            first_error = exc
        canonical = _canonical_or_none(body)
        if canonical is not None and canonical != body:
            try:
                self.signer.verify(canonical, signature)
                return canonical
            except SignatureError:
                pass
        raise RejectedMessage(f"invalid signature: {first_error}")


def _canonical_or_none(body: bytes) -> bytes | None:
    """Re-encode JSON ``body`` canonically (key order does not matter), or None if not JSON."""
    try:
        return canonical_json(json.loads(body))
    except ValueError:
        return None
