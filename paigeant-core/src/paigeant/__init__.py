"""paigeant: durable workflow orchestration for AI agents, as routing slips over pluggable transports."""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from .errors import (
    AwsCredentialsError,
    AwsTokenRejectedError,
    ConfigurationError,
    DuplicatePluginError,
    IdentityProviderUnavailableError,
    InvalidTokenError,
    LeaseLostError,
    MessageTooLargeError,
    NonRetryableError,
    PaigeantError,
    PluginNotFoundError,
    SignatureError,
    TransportConnectionError,
)
from .hookspecs import hookimpl
from .plugins import get_identity_provider, get_signer, get_transport
from .runtime.activity import Activity, activity
from .runtime.context import ActivityContext
from .runtime.dispatcher import WorkflowDispatcher
from .runtime.worker import Worker
from .security.ed25519_signer import Ed25519Signer
from .security.hmac_signer import HmacSigner
from .security.identity import IdentityProvider
from .security.jwt_identity import JwtIdentityProvider
from .security.signer import Signer
from .transports.base import (
    DEAD_LETTER_ATTEMPT_HEADER,
    DEAD_LETTER_QUEUE_HEADER,
    DEAD_LETTER_REASON_HEADER,
    DEAD_LETTER_TIME_HEADER,
    Delivery,
    Outgoing,
    QueueStats,
    Transport,
    dead_letter_headers,
)
from .transports.inmemory import InMemoryTransport
from .transports.queues import activity_queue, dead_letter_queue
from .workflow.events import EventType, WorkflowEvent, WorkflowResult
from .workflow.messages import ActivitySpec, PaigeantMessage, RetryPolicy, RoutingSlip, Subscription

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
    "DEAD_LETTER_ATTEMPT_HEADER",
    "DEAD_LETTER_QUEUE_HEADER",
    "DEAD_LETTER_REASON_HEADER",
    "DEAD_LETTER_TIME_HEADER",
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
    "LeaseLostError",
    "MessageTooLargeError",
    "NonRetryableError",
    "Outgoing",
    "PaigeantAgent",
    "PaigeantError",
    "PaigeantMessage",
    "PlannerAgentDeps",
    "PluginNotFoundError",
    "QueueStats",
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
    "dead_letter_headers",
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
