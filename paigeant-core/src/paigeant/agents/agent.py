"""PaigeantAgent: a pydantic-ai Agent that is also a paigeant activity."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from typing import Any, cast

from pydantic import BaseModel
from pydantic_ai import Agent, RunContext
from pydantic_ai.exceptions import UserError
from pydantic_ai.models import KnownModelName, Model
from pydantic_ai.output import OutputSpec
from pydantic_core import to_jsonable_python
from typing_extensions import TypeVar

from ..errors import NonRetryableError
from ..runtime.activity import Activity
from ..runtime.context import ActivityContext
from ..transports.queues import validate_activity_name
from ..workflow.messages import RetryPolicy
from .catalog import ActivityInfo, ActivityLike, catalog
from .deps import WorkflowDependencies, build_deps
from .itinerary import ItineraryEditor

__all__ = ["PaigeantAgent", "format_previous_output"]

logger = logging.getLogger(__name__)

DepsT = TypeVar("DepsT", bound=WorkflowDependencies, default=WorkflowDependencies)
OutputT = TypeVar("OutputT", default=str)


def format_previous_output(value: Any) -> str | None:
    """Render a previous step's output for the model's instructions (None when there is none)."""
    if value is None:
        return None
    if isinstance(value, BaseModel):
        text = value.model_dump_json(indent=2)
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(to_jsonable_python(value), indent=2, ensure_ascii=False)
    return f"The previous step of this workflow produced this output:\n{text}"


class PaigeantAgent(Agent[DepsT, OutputT]):
    """A pydantic-ai Agent that is also the activity ``name``: give it to a Worker to serve it.

    Args:
        model: The pydantic-ai model (or model name) the agent runs with.
        name: The activity name (and queue) of the agent; ``[A-Za-z0-9_-]+``.
        deps_type: A WorkflowDependencies subclass; deps given at dispatch are rebuilt as it.
        output_type: The agent's output type; pydantic models are recorded as JSON.
        system_prompt: Static system prompt(s).
        can_edit_itinerary: Give the agent a tool to add steps after its own.
        known_activities: The activities that tool may add (activities, agents or names).
        max_added_steps: At most this many steps added to a workflow in all, enforced in code.
        retry: Retry policy of the step (paigeant's, not pydantic-ai's ``retries``).
        timeout: Timeout of the step, in seconds.
        description: What the agent does, shown to planners.
        **agent_kwargs: Any other ``pydantic_ai.Agent`` argument (``instructions``, ``tools``...).
    """

    def __init__(
        self,
        model: Model | KnownModelName | str | None = None,
        *,
        name: str,
        deps_type: type[DepsT] = WorkflowDependencies,  # type: ignore[assignment]
        output_type: OutputSpec[OutputT] = str,  # type: ignore[assignment]
        system_prompt: str | Sequence[str] = (),
        can_edit_itinerary: bool = False,
        known_activities: Iterable[ActivityLike] = (),
        max_added_steps: int = 3,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        description: str | None = None,
        **agent_kwargs: Any,
    ) -> None:
        """Create the agent; see the class docstring for the arguments."""
        validate_activity_name(name)
        if not (isinstance(deps_type, type) and issubclass(deps_type, WorkflowDependencies)):
            raise TypeError(
                f"agent {name!r}: deps_type must be a subclass of "
                f"paigeant.WorkflowDependencies, got {deps_type!r}"
            )
        if max_added_steps < 0:
            raise ValueError(f"agent {name!r}: max_added_steps must be zero or more")
        known = catalog(known_activities)
        if can_edit_itinerary and not known:
            raise ValueError(
                f"agent {name!r} may edit the itinerary but knows no activities: pass "
                "known_activities=[...] (activities, agents or activity names)"
            )
        if description is None and isinstance(system_prompt, str) and system_prompt:
            description = system_prompt
        super().__init__(
            model,
            name=name,
            deps_type=deps_type,
            output_type=output_type,
            system_prompt=system_prompt,
            description=description,
            **agent_kwargs,
        )
        self.workflow_deps_type: type[WorkflowDependencies] = deps_type
        self.can_edit_itinerary = can_edit_itinerary
        self.known_activities: dict[str, ActivityInfo] = known
        self.max_added_steps = max_added_steps
        self.activity_retry = retry
        self.activity_timeout = timeout
        self._activity: Activity | None = None

        @self.instructions
        def previous_output(ctx: RunContext[DepsT]) -> str | None:
            return format_previous_output(getattr(ctx.deps, "previous_output", None))

    def __repr__(self) -> str:
        return f"PaigeantAgent(name={self.name!r})"

    @property
    def activity_name(self) -> str:
        """The activity (and queue) name of this agent."""
        return validate_activity_name(self.name or "")

    def as_activity(self) -> Activity:
        """Return the Activity that runs this agent as a workflow step."""
        if self._activity is None or self._activity.name != self.activity_name:
            self._activity = Activity(
                self.activity_name,
                self.run_step,
                retry=self.activity_retry,
                timeout=self.activity_timeout,
                description=self.description or f"pydantic-ai agent {self.activity_name}",
            )
        return self._activity

    def step_prompt(self, ctx: ActivityContext) -> str:
        """The user prompt of a step: the spec's prompt, else one built from the step's inputs."""
        if ctx.prompt:
            return ctx.prompt
        parts = [f"Carry out the workflow step {ctx.activity!r}."]
        if ctx.arguments:
            arguments = json.dumps(to_jsonable_python(ctx.arguments), ensure_ascii=False)
            parts.append(f"Arguments: {arguments}")
        if ctx.previous_output is not None:
            parts.append("Work from the previous step's output given in your instructions.")
        return " ".join(parts)

    async def run_step(self, ctx: ActivityContext) -> Any:
        """Run the agent for one workflow step and return its output (recorded as JSON)."""
        deps = build_deps(self.workflow_deps_type, ctx)
        editor = (
            ItineraryEditor(ctx, self.known_activities, self.max_added_steps)
            if self.can_edit_itinerary
            else None
        )
        logger.debug(
            "[%s] running agent %s",
            ctx.correlation_id,
            self.activity_name,
            extra={"correlation_id": ctx.correlation_id},
        )
        try:
            result = await self.run(
                self.step_prompt(ctx),
                deps=cast(DepsT, deps),
                toolsets=[editor.toolset()] if editor is not None else None,
                instructions=editor.instructions() if editor is not None else None,
            )
        except (UserError, ImportError) as exc:
            raise NonRetryableError(f"agent {self.activity_name!r} cannot run: {exc}") from exc
        ctx.variables.clear()
        ctx.variables.update(deps.variables)
        return result.output
