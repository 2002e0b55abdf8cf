"""Message properties to and from AMQP: ids, string headers, the attempt count, broker deaths."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pamqp.commands import Basic

from paigeant import (
    DEAD_LETTER_ATTEMPT_HEADER,
    DEAD_LETTER_QUEUE_HEADER,
    DEAD_LETTER_REASON_HEADER,
    DEAD_LETTER_TIME_HEADER,
)

from ._names import ATTEMPTS_HEADER

__all__ = [
    "BROKER_REASONS",
    "attempt_of",
    "broker_dead_letter",
    "delivered_headers",
    "message_id_of",
    "properties",
    "user_headers",
]

#: Persistent delivery (quorum queues persist every message anyway).
_PERSISTENT = 2
#: Headers the broker adds; kept from users (and dropped when a message is republished).
_BROKER_HEADERS = ("x-death", "x-delivery-count", "x-acquired-count", ATTEMPTS_HEADER)
_BROKER_PREFIXES = ("x-first-death-", "x-last-death-")
#: What RabbitMQ's own dead-letter reasons mean, for the dead letter's reason header.
BROKER_REASONS = {
    "delivery_limit": "the broker's delivery limit (x-delivery-limit) was reached: its "
    "consumers kept failing or dying",
    "rejected": "rejected by a consumer without requeue",
    "maxlen": "the queue was full (x-max-length)",
    "expired": "it expired (message TTL)",
}


def properties(message_id: str, headers: Mapping[str, str], attempts: int = 0) -> Basic.Properties:
    """AMQP properties of a published message; ``attempts``: deliveries it had before."""
    table: dict[str, Any] = dict(headers)
    if attempts:
        table[ATTEMPTS_HEADER] = attempts
    return Basic.Properties(message_id=message_id, headers=table, delivery_mode=_PERSISTENT)


def message_id_of(props: Basic.Properties, body: bytes) -> str:
    """The message's id; a foreign message without one gets a stable id from its body."""
    if props.message_id:
        return str(props.message_id)
    return "amqp-" + hashlib.sha256(body).hexdigest()[:24]


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def user_headers(table: Mapping[str, Any] | None) -> dict[str, str]:
    """The message's own headers as strings, without the broker's bookkeeping."""
    if not table:
        return {}
    return {
        key: value if isinstance(value, str) else _text(value)
        for key, value in table.items()
        if key not in _BROKER_HEADERS and not key.startswith(_BROKER_PREFIXES)
    }


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str | bytes | float):
        return 0
    try:
        return max(int(value), 0)
    except ValueError:
        return 0


def attempt_of(table: Mapping[str, Any] | None) -> int:
    """1 + deliveries before this one: the broker's count plus ours from a delayed nack.

    3.10-3.13 count returns in ``x-delivery-count`` (0, or absent, on the first delivery);
    4.x counts every delivery in ``x-acquired-count`` and only failed ones in the former.
    """
    if not table:
        return 1
    counted = max(_int(table.get("x-delivery-count")), _int(table.get("x-acquired-count")))
    return _int(table.get(ATTEMPTS_HEADER)) + counted + 1


def delivered_headers(
    table: Mapping[str, Any] | None, *, dead_letters: bool, delivery_limit: int
) -> dict[str, str]:
    """The headers a consumer sees: the message's own, and on a dead-letter queue
    (``dead_letters``) the contract's headers mapped from a broker-made dead letter's x-death.
    """
    headers = user_headers(table)
    if dead_letters:
        headers = broker_dead_letter(table, headers, attempt=delivery_limit + 1)
    return headers


def broker_dead_letter(
    table: Mapping[str, Any] | None, headers: dict[str, str], *, attempt: int
) -> dict[str, str]:
    """``headers`` of a message the broker dead-lettered, with the contract's headers added.

    The broker's ``x-death`` entry (the newest that is not a delay expiring) says why, from
    which queue and when; a message the transport dead-lettered already has them.
    """
    if not table or DEAD_LETTER_REASON_HEADER in headers:
        return headers
    deaths = table.get("x-death")
    if not isinstance(deaths, list):
        return headers
    death = next(
        (d for d in deaths if isinstance(d, Mapping) and _text(d.get("reason")) != "expired"),
        None,
    )
    if death is None:
        return headers
    reason = _text(death.get("reason", "unknown"))
    when = death.get("time")
    at = when if isinstance(when, datetime) else datetime.now(UTC)
    return {
        **headers,
        DEAD_LETTER_REASON_HEADER: f"dead-lettered by RabbitMQ ({reason}): "
        + BROKER_REASONS.get(reason, "see the broker's x-death header"),
        DEAD_LETTER_QUEUE_HEADER: _text(death.get("queue", "")),
        DEAD_LETTER_ATTEMPT_HEADER: str(attempt),
        DEAD_LETTER_TIME_HEADER: at.astimezone(UTC).isoformat(timespec="milliseconds"),
    }
