"""pydantic-ai integration: agents as activities, cross-agent deps, the planner, the executor
that serves one agent, and model choice (``PAIGEANT_MODEL`` or an offline model).

Modules here may import every wing below (``runtime`` and what it imports); only ``cli``
imports this wing, and ``import paigeant`` loads it lazily (pydantic-ai is slow to import).
"""

from __future__ import annotations

from .agent import PaigeantAgent
from .catalog import ActivityInfo, StepRequest
from .deps import WorkflowDependencies
from .executor import ActivityExecutor, AgentNotFoundError, find_agent
from .model import MODEL_ENV, ModelConfigurationError, load_model, resolve_model, scripted_model
from .planner import PlannerAgentDeps, create_planner_agent

__all__ = [
    "MODEL_ENV",
    "ActivityExecutor",
    "ActivityInfo",
    "AgentNotFoundError",
    "ModelConfigurationError",
    "PaigeantAgent",
    "PlannerAgentDeps",
    "StepRequest",
    "WorkflowDependencies",
    "create_planner_agent",
    "find_agent",
    "load_model",
    "resolve_model",
    "scripted_model",
]
