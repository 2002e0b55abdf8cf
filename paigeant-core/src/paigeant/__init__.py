"""paigeant: durable workflow orchestration for AI agents, as routing slips over pluggable transports."""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from .activity import Activity, activity
from .context import ActivityContext
from .dispatcher import WorkflowDispatcher
from .ed25519_signer import Ed25519Signer
from .errors import (
    AwsCredentialsError,
    AwsTokenRejectedError,
    ConfigurationError,
    DuplicatePluginError,
    IdentityProviderUnavailableError,
    InvalidTokenError,
    MessageTooLargeError,
    NonRetryableError,
    PaigeantError,
    PluginNotFoundError,
    SignatureError,
    TransportConnectionError,
)
from .events import EventType, WorkflowEvent, WorkflowResult
from .hmac_signer import HmacSigner
from .hookspecs import hookimpl
from .identity import IdentityProvider
from .inmemory import InMemoryTransport
from .jwt_identity import JwtIdentityProvider
from .messages import ActivitySpec, PaigeantMessage, RetryPolicy, RoutingSlip, Subscription
from .plugins import get_identity_provider, get_signer, get_transport
from .queues import activity_queue, dead_letter_queue
from .signing import Signer
from .transport import Delivery, Outgoing, Transport
from .worker import Worker

if TYPE_CHECKING:  # typed for checkers; loaded lazily at run time (pydantic-ai is slow to import)
    from .agents import (
        ActivityExecutor,
        PaigeantAgent,
        PlannerAgentDeps,
        WorkflowDependencies,
        create_planner_agent,
    )

try:
    __version__ = version("paigeant-core")
except PackageNotFoundError:  # pragma: no cover - source tree without metadata
    __version__ = "0+unknown"

__all__ = [
    "Activity",
    "ActivityContext",
    "ActivityExecutor",
    "ActivitySpec",
    "AwsCredentialsError",
    "AwsTokenRejectedError",
    "ConfigurationError",
    "Delivery",
    "DuplicatePluginError",
    "Ed25519Signer",
    "EventType",
    "HmacSigner",
    "IdentityProvider",
    "IdentityProviderUnavailableError",
    "InMemoryTransport",
    "InvalidTokenError",
    "JwtIdentityProvider",
    "MessageTooLargeError",
    "NonRetryableError",
    "Outgoing",
    "PaigeantAgent",
    "PaigeantError",
    "PaigeantMessage",
    "PlannerAgentDeps",
    "PluginNotFoundError",
    "RetryPolicy",
    "RoutingSlip",
    "SignatureError",
    "Signer",
    "Subscription",
    "Transport",
    "TransportConnectionError",
    "Worker",
    "WorkflowDependencies",
    "WorkflowDispatcher",
    "WorkflowEvent",
    "WorkflowResult",
    "__version__",
    "activity",
    "activity_queue",
    "create_planner_agent",
    "dead_letter_queue",
    "get_identity_provider",
    "get_signer",
    "get_transport",
    "hookimpl",
]

#: Names loaded on first use, so ``import paigeant`` does not import pydantic-ai.
_LAZY: dict[str, str] = {
    "ActivityExecutor": ".agents",
    "PaigeantAgent": ".agents",
    "PlannerAgentDeps": ".agents",
    "WorkflowDependencies": ".agents",
    "create_planner_agent": ".agents",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'paigeant' has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value
