"""Exception types raised by paigeant."""

from __future__ import annotations

__all__ = [
    "ActivityTimeoutError",
    "AwsCredentialsError",
    "AwsTokenRejectedError",
    "ConfigurationError",
    "DuplicatePluginError",
    "IdentityProviderUnavailableError",
    "InvalidTokenError",
    "LeaseLostError",
    "MessageTooLargeError",
    "NonRetryableError",
    "PaigeantError",
    "PluginLoadError",
    "PluginNotFoundError",
    "SignatureError",
    "StoreUnavailableError",
    "TransportConnectionError",
]


class PaigeantError(Exception):
    """Base class of every paigeant error."""


class PluginNotFoundError(PaigeantError, LookupError):
    """No plugin registered the requested transport, signer or identity provider name."""


class PluginLoadError(PaigeantError, ImportError):
    """An installed plugin's module could not be imported or registered."""


class DuplicatePluginError(PaigeantError, RuntimeError):
    """Two plugins registered the same name for the same kind of component."""


class ConfigurationError(PaigeantError, RuntimeError):
    """Configuration is missing or inconsistent; the message says what to set."""


class MessageTooLargeError(PaigeantError, ValueError):
    """An encoded message exceeds the configured size limit."""


class TransportConnectionError(PaigeantError, ConnectionError):
    """A transport could not reach its broker."""


class LeaseLostError(PaigeantError):
    """A delivery's lease ran out: the message may be with another consumer now.

    Raised by ``Delivery.extend()``; the step runner logs it and lets the step finish (its
    forwards keep their message ids, so the copy another consumer runs is recognisable).
    """


class StoreUnavailableError(PaigeantError, ConnectionError):
    """The workflow store cannot be opened or reached; the message names it and what to check."""


class SignatureError(PaigeantError):
    """A message signature is missing, malformed or does not verify."""


class InvalidTokenError(PaigeantError):
    """An on-behalf-of token failed validation."""


class NonRetryableError(PaigeantError):
    """Raised by an activity to fault the workflow at once, skipping remaining retries."""


class ActivityTimeoutError(PaigeantError, TimeoutError):
    """An activity ran past its timeout; counts as a failed attempt."""


class IdentityProviderUnavailableError(PaigeantError):
    """The identity provider cannot validate tokens right now (e.g. its JWKS URL is unreachable).

    Unlike InvalidTokenError it does not fault the workflow: the step is redelivered later.
    """


class AwsCredentialsError(PaigeantError):
    """STS could not provide AWS credentials for the workflow's user (may pass on a retry)."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        """Record ``message`` and the STS error ``code`` (e.g. ``IDPCommunicationError``)."""
        super().__init__(message)
        self.code = code


class AwsTokenRejectedError(AwsCredentialsError, NonRetryableError):
    """STS rejected the on-behalf-of token, or there is none; retrying cannot help."""
