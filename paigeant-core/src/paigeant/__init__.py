"""paigeant: durable workflow orchestration for AI agents, as routing slips over pluggable transports."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .errors import (
    ConfigurationError,
    DuplicatePluginError,
    InvalidTokenError,
    MessageTooLargeError,
    NonRetryableError,
    PaigeantError,
    PluginNotFoundError,
    SignatureError,
    TransportConnectionError,
)
from .hookspecs import hookimpl
from .identity import IdentityProvider
from .inmemory import InMemoryTransport
from .messages import ActivitySpec, PaigeantMessage, RetryPolicy, RoutingSlip
from .plugins import get_identity_provider, get_signer, get_transport
from .queues import activity_queue, dead_letter_queue
from .signing import Signer
from .transport import Delivery, Outgoing, Transport

try:
    __version__ = version("paigeant-core")
except PackageNotFoundError:  # pragma: no cover - source tree without metadata
    __version__ = "0+unknown"

__all__ = [
    "ActivitySpec",
    "ConfigurationError",
    "Delivery",
    "DuplicatePluginError",
    "IdentityProvider",
    "InMemoryTransport",
    "InvalidTokenError",
    "MessageTooLargeError",
    "NonRetryableError",
    "Outgoing",
    "PaigeantError",
    "PaigeantMessage",
    "PluginNotFoundError",
    "RetryPolicy",
    "RoutingSlip",
    "SignatureError",
    "Signer",
    "Transport",
    "TransportConnectionError",
    "__version__",
    "activity_queue",
    "dead_letter_queue",
    "get_identity_provider",
    "get_signer",
    "get_transport",
    "hookimpl",
]
