"""Environment-backed settings with one precedence: argument, then PAIGEANT_* variable, then default."""

from __future__ import annotations

import os

from .errors import ConfigurationError

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "env_float",
    "env_int",
    "env_str",
    "max_message_bytes",
    "namespace",
]

DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024


def env_str(name: str, default: str | None = None) -> str | None:
    """Return environment variable ``name`` stripped, or ``default`` when unset or empty."""
    value = os.environ.get(name, "").strip()
    return value or default


def env_int(name: str, default: int) -> int:
    """Return environment variable ``name`` as an int, with a clear error when it is not one."""
    raw = env_str(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be an integer, got {raw!r}") from None


def env_float(name: str, default: float) -> float:
    """Return environment variable ``name`` as a float, with a clear error when it is not one."""
    raw = env_str(name)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, got {raw!r}") from None


def max_message_bytes() -> int:
    """Return the message size limit from ``PAIGEANT_MAX_MESSAGE_BYTES`` (default 1 MiB)."""
    limit = env_int("PAIGEANT_MAX_MESSAGE_BYTES", DEFAULT_MAX_MESSAGE_BYTES)
    if limit <= 0:
        raise ConfigurationError(f"PAIGEANT_MAX_MESSAGE_BYTES must be positive, got {limit}")
    return limit


def namespace() -> str:
    """Return the queue namespace from ``PAIGEANT_NAMESPACE`` (default ``paigeant``)."""
    return env_str("PAIGEANT_NAMESPACE", "paigeant") or "paigeant"
