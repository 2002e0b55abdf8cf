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
    StoreUnavailableError,
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
    BrowsedMessage,
    Delivery,
    Outgoing,
    QueueStats,
    Transport,
    dead_letter_headers,
    too_many_deliveries,
)
from .transports.inmemory import InMemoryTransport
from .transports.queues import activity_queue, dead_letter_queue, monitor_queue
from .transports.urls import redact_url
from .workflow.events import OPT_IN_EVENTS, EventType, WorkflowEvent, WorkflowResult
from .workflow.messages import (
    EVERY_EVENT,
    ActivitySpec,
    PaigeantMessage,
    RetryPolicy,
    RoutingSlip,
    Subscription,
)

if TYPE_CHECKING:  # typed for checkers; loaded lazily at run time (pydantic-ai is slow to import,
    # and workers need none of the store: its models, sqlite3 and threads load on first use)
    from .agents import (
        ActivityExecutor,
        PaigeantAgent,
        PlannerAgentDeps,
        WorkflowDependencies,
        create_planner_agent,
    )
    from .store.base import WorkflowPage, WorkflowStore
    from .store.choice import get_workflow_store
    from .store.counters import CountDeltas
    from .store.dead_letters import DEAD_LETTER_ID_HEADER, DeadLetter, DeadLetters
    from .store.memory import MemoryWorkflowStore
    from .store.monitor import Monitor
    from .store.queues import holds_messages, known_queues, queue_overview, queue_stats
    from .store.records import STATUSES as WORKFLOW_STATUSES
    from .store.records import (
        CompensationRecord,
        RetryRecord,
        Revision,
        StepRecord,
        WorkflowRecord,
        WorkflowSummary,
    )
    from .store.sqlite import SqliteWorkflowStore

try:
    __version__ = version("paigeant-core")
except PackageNotFoundError:  # pragma: no cover - source tree without metadata
    __version__ = "0+unknown"

__all__ = [
    "DEAD_LETTER_ATTEMPT_HEADER",
    "DEAD_LETTER_ID_HEADER",
    "DEAD_LETTER_QUEUE_HEADER",
    "DEAD_LETTER_REASON_HEADER",
    "DEAD_LETTER_TIME_HEADER",
    "EVERY_EVENT",
    "OPT_IN_EVENTS",
    "WORKFLOW_STATUSES",
    "Activity",
    "ActivityContext",
    "ActivityExecutor",
    "ActivitySpec",
    "AwsCredentialsError",
    "AwsTokenRejectedError",
    "BrowsedMessage",
    "CompensationRecord",
    "ConfigurationError",
    "CountDeltas",
    "DeadLetter",
    "DeadLetters",
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
    "MemoryWorkflowStore",
    "MessageTooLargeError",
    "Monitor",
    "NonRetryableError",
    "Outgoing",
    "PaigeantAgent",
    "PaigeantError",
    "PaigeantMessage",
    "PlannerAgentDeps",
    "PluginNotFoundError",
    "QueueStats",
    "RetryPolicy",
    "RetryRecord",
    "Revision",
    "RoutingSlip",
    "SignatureError",
    "Signer",
    "SqliteWorkflowStore",
    "StepRecord",
    "StoreUnavailableError",
    "Subscription",
    "Transport",
    "TransportConnectionError",
    "Worker",
    "WorkflowDependencies",
    "WorkflowDispatcher",
    "WorkflowEvent",
    "WorkflowPage",
    "WorkflowRecord",
    "WorkflowResult",
    "WorkflowStore",
    "WorkflowSummary",
    "__version__",
    "activity",
    "activity_queue",
    "create_planner_agent",
    "dead_letter_headers",
    "dead_letter_queue",
    "get_identity_provider",
    "get_signer",
    "get_transport",
    "get_workflow_store",
    "holds_messages",
    "hookimpl",
    "known_queues",
    "monitor_queue",
    "queue_overview",
    "queue_stats",
    "redact_url",
    "too_many_deliveries",
]

#: Names loaded on first use, so ``import paigeant`` imports neither pydantic-ai nor the store.
_LAZY: dict[str, str] = {
    "ActivityExecutor": ".agents",
    "PaigeantAgent": ".agents",
    "PlannerAgentDeps": ".agents",
    "WorkflowDependencies": ".agents",
    "create_planner_agent": ".agents",
    "CompensationRecord": ".store.records",
    "CountDeltas": ".store.counters",
    "DEAD_LETTER_ID_HEADER": ".store.dead_letters",
    "DeadLetter": ".store.dead_letters",
    "DeadLetters": ".store.dead_letters",
    "MemoryWorkflowStore": ".store.memory",
    "Monitor": ".store.monitor",
    "RetryRecord": ".store.records",
    "Revision": ".store.records",
    "SqliteWorkflowStore": ".store.sqlite",
    "StepRecord": ".store.records",
    "WORKFLOW_STATUSES": ".store.records:STATUSES",
    "WorkflowPage": ".store.base",
    "WorkflowRecord": ".store.records",
    "WorkflowStore": ".store.base",
    "WorkflowSummary": ".store.records",
    "get_workflow_store": ".store.choice",
    "holds_messages": ".store.queues",
    "known_queues": ".store.queues",
    "queue_overview": ".store.queues",
    "queue_stats": ".store.queues",
}


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'paigeant' has no attribute {name!r}")
    module, _, attribute = target.partition(":")
    value = getattr(import_module(module, __name__), attribute or name)
    globals()[name] = value
    return value
