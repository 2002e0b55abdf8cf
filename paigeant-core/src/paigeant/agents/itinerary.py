"""The itinerary-editing tool: lets an agent add known activities after its own step, within a limit."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pydantic_ai import FunctionToolset, Tool

from ..runtime.context import ActivityContext
from .catalog import ActivityInfo, StepRequest, format_catalog

__all__ = ["ADD_STEPS_TOOL", "ItineraryEditor"]

logger = logging.getLogger(__name__)

#: Name of the tool an agent with ``can_edit_itinerary=True`` is given.
ADD_STEPS_TOOL = "add_workflow_steps"


class ItineraryEditor:
    """Adds steps to one running step's workflow, enforcing the catalog and the step limit."""

    def __init__(
        self, ctx: ActivityContext, known: Mapping[str, ActivityInfo], max_added_steps: int
    ) -> None:
        """Edit the workflow of ``ctx``, adding only ``known`` activities, ``max_added_steps`` in all."""
        self.ctx = ctx
        self.known = dict(known)
        self.max_added_steps = max_added_steps

    @property
    def remaining(self) -> int:
        """How many more steps may still be added to this workflow."""
        used = self.ctx.added_steps + len(self.ctx.added_activities)
        return max(self.max_added_steps - used, 0)

    def add(self, steps: list[StepRequest]) -> str:
        """Add ``steps`` after the current step, all or none; return what happened, for the model."""
        if not steps:
            return "No steps given; nothing was added."
        unknown = [step.activity for step in steps if step.activity not in self.known]
        if unknown:
            return (
                f"Refused: unknown activities {', '.join(map(repr, unknown))}. "
                f"Known activities: {', '.join(self.known) or 'none'}. Nothing was added."
            )
        if len(steps) > self.remaining:
            logger.warning(
                "[%s] %s asked to add %d step(s); only %d of %d allowed remain",
                self.ctx.correlation_id,
                self.ctx.activity,
                len(steps),
                self.remaining,
                self.max_added_steps,
                extra={"correlation_id": self.ctx.correlation_id},
            )
            return (
                f"Refused: this workflow may have at most {self.max_added_steps} added steps and "
                f"only {self.remaining} remain; you asked for {len(steps)}. Nothing was added."
            )
        self.ctx.add_activities([step.to_spec() for step in steps])
        names = ", ".join(step.activity for step in steps)
        logger.info(
            "[%s] %s added steps: %s",
            self.ctx.correlation_id,
            self.ctx.activity,
            names,
            extra={"correlation_id": self.ctx.correlation_id},
        )
        return f"Added {len(steps)} step(s) after this one: {names}. {self.remaining} remain."

    def instructions(self) -> str:
        """What the model is told about editing the itinerary in this run."""
        return (
            f"You may add up to {self.remaining} more step(s) to this workflow, to run right "
            f"after yours, with the `{ADD_STEPS_TOOL}` tool. Known activities:\n"
            f"{format_catalog(self.known.values())}"
        )

    def toolset(self) -> FunctionToolset[Any]:
        """A toolset holding the add-steps tool, given to this run only."""

        async def add_workflow_steps(steps: list[StepRequest]) -> str:
            return self.add(steps)

        description = (
            "Add steps to the running workflow, right after the current step, in order. "
            f"At most {self.remaining} more may be added. Known activities:\n"
            f"{format_catalog(self.known.values())}"
        )
        tool = Tool(add_workflow_steps, name=ADD_STEPS_TOOL, description=description)
        return FunctionToolset([tool])
