"""Catalogs of activities an agent may plan with: names, descriptions, and requested steps."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from ..runtime.activity import Activity, SupportsActivity, as_activity
from ..transports.queues import validate_activity_name
from ..workflow.messages import ActivitySpec

__all__ = ["ActivityInfo", "ActivityLike", "StepRequest", "catalog", "format_catalog"]


@dataclass(frozen=True)
class ActivityInfo:
    """The name and description of an activity, as shown to a planning model."""

    name: str
    description: str = ""

    def __post_init__(self) -> None:
        validate_activity_name(self.name)


ActivityLike = Activity | SupportsActivity | ActivityInfo | str


def _describe(item: ActivityLike) -> ActivityInfo:
    if isinstance(item, ActivityInfo):
        return item
    if isinstance(item, str):
        return ActivityInfo(item)
    act = as_activity(item)
    return ActivityInfo(act.name, act.description)


def catalog(items: Iterable[ActivityLike]) -> dict[str, ActivityInfo]:
    """Describe ``items`` (activities, agents, infos or bare names) by name, in order."""
    found: dict[str, ActivityInfo] = {}
    for item in items:
        info = _describe(item)
        found.setdefault(info.name, info)
    return found


def format_catalog(infos: Iterable[ActivityInfo]) -> str:
    """Render a catalog as one ``- name: description`` line per activity."""
    lines = [f"- {info.name}: {info.description or '(no description)'}" for info in infos]
    return "\n".join(lines) or "(none)"


class StepRequest(BaseModel):
    """A step a model asks to run: the activity name, an optional prompt and arguments."""

    activity: str = Field(description="Name of a known activity.")
    prompt: str | None = Field(default=None, description="Instruction for the step, if an agent.")
    arguments: dict[str, Any] = Field(default_factory=dict, description="Arguments of the step.")

    def to_spec(self) -> ActivitySpec:
        """Return the ActivitySpec that runs this step."""
        return ActivitySpec(name=self.activity, prompt=self.prompt, arguments=self.arguments)
