"""Environment-backed settings with one precedence: argument, then PAIGEANT_* variable, then default."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .errors import ConfigurationError

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "env_bool",
    "env_float",
    "env_int",
    "env_str",
    "max_message_bytes",
    "namespace",
    "paigeant_home",
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


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def env_bool(name: str, default: bool) -> bool:
    """Return environment variable ``name`` as a flag (1/0, true/false, yes/no, on/off)."""
    raw = env_str(name)
    if raw is None:
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise ConfigurationError(f"{name} must be 1 or 0 (true/false, yes/no, on/off), got {raw!r}")


def max_message_bytes() -> int:
    """Return the message size limit from ``PAIGEANT_MAX_MESSAGE_BYTES`` (default 1 MiB)."""
    limit = env_int("PAIGEANT_MAX_MESSAGE_BYTES", DEFAULT_MAX_MESSAGE_BYTES)
    if limit <= 0:
        raise ConfigurationError(f"PAIGEANT_MAX_MESSAGE_BYTES must be positive, got {limit}")
    return limit


def namespace() -> str:
    """Return the queue namespace from ``PAIGEANT_NAMESPACE`` (default ``paigeant``)."""
    return env_str("PAIGEANT_NAMESPACE", "paigeant") or "paigeant"


def paigeant_home() -> Path:
    """Return the directory paigeant keeps local state in (the embedded workflow store).

    ``PAIGEANT_HOME`` if set, else the user's data directory: ``$XDG_DATA_HOME/paigeant`` or
    ``~/.local/share/paigeant`` on Linux, ``~/Library/Application Support/paigeant`` on macOS,
    ``%LOCALAPPDATA%\\paigeant`` on Windows. Not created here.
    """
    explicit = env_str("PAIGEANT_HOME")
    if explicit:
        return Path(explicit).expanduser()
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "paigeant"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "paigeant"
    xdg = os.environ.get("XDG_DATA_HOME", "").strip()
    return Path(xdg or Path.home() / ".local" / "share") / "paigeant"
