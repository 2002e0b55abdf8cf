"""The planner agent: lists the known activities and dispatches a workflow built from them."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic_ai import Agent, RunContext
from pydantic_ai.models import KnownModelName, Model

from ..runtime.dispatcher import WorkflowDispatcher
from .catalog import ActivityInfo, ActivityLike, StepRequest, catalog
from .model import resolve_model
from .offline_planner import offline_planner_model

__all__ = ["PLANNER_INSTRUCTIONS", "PlannerAgentDeps", "create_planner_agent"]

logger = logging.getLogger(__name__)

PLANNER_INSTRUCTIONS = """\
You plan workflows. Call `list_activities` to see the activities you can use, choose the ones \
that fulfil the request, in order, then call `dispatch_workflow` once with those steps (give each \
agent step a short prompt). Answer with the correlation id `dispatch_workflow` returned.\
"""


@dataclass
class PlannerAgentDeps:
    """What the planner works with: a dispatcher, the activities it may use, workflow inputs."""

    workflow_dispatcher: WorkflowDispatcher
    activities: Sequence[ActivityLike] = ()
    variables: dict[str, Any] = field(default_factory=dict)
    obo_token: str | None = None
    #: Correlation ids of the workflows dispatched by the planner, in order.
    dispatched: list[str] = field(default_factory=list)

    def known(self) -> dict[str, ActivityInfo]:
        """The activities the planner may use, by name."""
        return catalog(self.activities)


def list_activities(ctx: RunContext[PlannerAgentDeps]) -> list[dict[str, str]]:
    """List the activities a workflow can be built from, with what each one does."""
    return [
        {"name": info.name, "description": info.description} for info in ctx.deps.known().values()
    ]


async def dispatch_workflow(
    ctx: RunContext[PlannerAgentDeps],
    steps: list[StepRequest],
    variables: dict[str, Any] | None = None,
) -> str:
    """Dispatch a workflow that runs ``steps`` in order; returns its correlation id.

    Args:
        ctx: The run context.
        steps: The steps, first to last; each names a known activity.
        variables: Initial workflow variables, if any.
    """
    deps = ctx.deps
    known = deps.known()
    if not known:
        return (
            "Refused: no activities are known to the planner (PlannerAgentDeps.activities is "
            "empty). Nothing was dispatched."
        )
    if not steps:
        return "Refused: a workflow needs at least one step. Nothing was dispatched."
    unknown = [step.activity for step in steps if step.activity not in known]
    if unknown:
        return (
            f"Refused: unknown activities {', '.join(map(repr, unknown))}. Known activities: "
            f"{', '.join(known) or 'none'}. Nothing was dispatched."
        )
    correlation_id = await deps.workflow_dispatcher.dispatch_workflow(
        [step.to_spec() for step in steps],
        variables={**deps.variables, **(variables or {})},
        obo_token=deps.obo_token,
    )
    deps.dispatched.append(correlation_id)
    logger.info(
        "[%s] planner dispatched %s",
        correlation_id,
        " -> ".join(step.activity for step in steps),
        extra={"correlation_id": correlation_id},
    )
    return correlation_id


def create_planner_agent(
    model: Model | KnownModelName | str | None = None, *, name: str = "planner"
) -> Agent[PlannerAgentDeps, str]:
    """Create a planner agent; ``model`` defaults to ``PAIGEANT_MODEL``, else an offline planner.

    The offline planner (``offline_planner.py``) dispatches the known activities whose names or
    descriptions the request mentions, in the order their descriptions give. Run the agent with
    ``PlannerAgentDeps(workflow_dispatcher=..., activities=[...])``; its answer names the
    correlation id, also kept in ``deps.dispatched``.
    """
    return Agent(
        resolve_model(model, offline=offline_planner_model()),
        name=name,
        deps_type=PlannerAgentDeps,
        output_type=str,
        instructions=PLANNER_INSTRUCTIONS,
        tools=[list_activities, dispatch_workflow],
        description="Plans a workflow from the known activities and dispatches it.",
    )
