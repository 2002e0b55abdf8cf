"""Classifying Redis errors: which ones a consume loop rides out, and which mean a lost group."""

from __future__ import annotations

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from paigeant import TransportConnectionError

__all__ = ["CONNECTION_ERRORS", "is_missing_group", "is_retryable"]

#: Errors that mean Redis could not be reached (or the connection broke).
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    OSError,
)

_TRANSIENT_REPLIES = ("LOADING", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "BUSY ")


def is_missing_group(exc: BaseException) -> bool:
    """Whether ``exc`` says the stream or its consumer group is gone (NOGROUP, key deleted)."""
    text = str(exc)
    return isinstance(exc, ResponseError) and (
        "NOGROUP" in text or ("UNBLOCKED" in text and "no longer exists" in text)
    )


def is_retryable(exc: BaseException) -> bool:
    """Whether ``exc`` is an outage to wait out (connection lost, failover, loading, busy)."""
    if isinstance(exc, (*CONNECTION_ERRORS, TransportConnectionError, ReadOnlyError)):
        return True
    return isinstance(exc, ResponseError) and str(exc).startswith(_TRANSIENT_REPLIES)
