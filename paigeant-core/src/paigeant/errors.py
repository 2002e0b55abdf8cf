"""Exception types raised by paigeant."""

from __future__ import annotations

__all__ = [
    "ActivityTimeoutError",
    "ConfigurationError",
    "DuplicatePluginError",
    "InvalidTokenError",
    "MessageTooLargeError",
    "NonRetryableError",
    "PaigeantError",
    "PluginNotFoundError",
    "SignatureError",
    "TransportConnectionError",
]


class PaigeantError(Exception):
    """Base class of every paigeant error."""


class PluginNotFoundError(PaigeantError, LookupError):
    """No plugin registered the requested transport, signer or identity provider name."""


class DuplicatePluginError(PaigeantError, RuntimeError):
    """Two plugins registered the same name for the same kind of component."""


class ConfigurationError(PaigeantError, RuntimeError):
    """Configuration is missing or inconsistent; the message says what to set."""


class MessageTooLargeError(PaigeantError, ValueError):
    """An encoded message exceeds the configured size limit."""


class TransportConnectionError(PaigeantError, ConnectionError):
    """A transport could not reach its broker."""


class SignatureError(PaigeantError):
    """A message signature is missing, malformed or does not verify."""


class InvalidTokenError(PaigeantError):
    """An on-behalf-of token failed validation."""


class NonRetryableError(PaigeantError):
    """Raised by an activity to fault the workflow at once, skipping remaining retries."""


class ActivityTimeoutError(PaigeantError, TimeoutError):
    """An activity ran past its timeout; counts as a failed attempt."""
