"""WorkflowDependencies: what an agent step knows of its workflow, and how it is rebuilt per step."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import NonRetryableError
from ..runtime.context import ActivityContext
from ..workflow.deps import DepsImportError, import_path, rebuild_deps
from ..workflow.messages import DepsEnvelope

__all__ = ["WorkflowDependencies", "build_deps"]

logger = logging.getLogger(__name__)


class WorkflowDependencies(BaseModel):
    """Base of every PaigeantAgent's ``deps_type``; the executor fills the workflow fields.

    Subclass it to add your own fields (given at dispatch with ``ActivitySpec(deps=...)``), and
    narrow ``previous_output`` (e.g. ``previous_output: Joke | None = None``) to have the JSON
    output of the previous step rebuilt as that type.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    correlation_id: str = ""
    previous_output: Any = None
    variables: dict[str, Any] = Field(default_factory=dict)
    user_claims: dict[str, Any] = Field(default_factory=dict)


def _given_data(
    envelope: DepsEnvelope | None, deps_type: type[WorkflowDependencies]
) -> tuple[type[WorkflowDependencies], dict[str, Any]]:
    """The class to build deps with and the data given at dispatch."""
    if envelope is None:
        return deps_type, {}
    if envelope.type == import_path(deps_type):
        return deps_type, dict(envelope.data)
    given = type(rebuild_deps(envelope))  # imports the class named in the message
    if not issubclass(given, deps_type):
        raise DepsImportError(
            f"deps of type {envelope.type!r} were given, but this agent expects "
            f"{import_path(deps_type)!r}; pass an instance of that class (or a subclass)"
        )
    return given, dict(envelope.data)


def build_deps(deps_type: type[WorkflowDependencies], ctx: ActivityContext) -> WorkflowDependencies:
    """Rebuild the deps given at dispatch (or a fresh ``deps_type``) and fill the workflow fields.

    Raises NonRetryableError when the deps cannot be imported or validated: retrying cannot help.
    """
    envelope = ctx.spec.deps if ctx.spec is not None else None
    try:
        cls, data = _given_data(envelope, deps_type)
    except DepsImportError as exc:
        raise NonRetryableError(str(exc)) from exc
    data.update(
        correlation_id=ctx.correlation_id,
        previous_output=ctx.previous_output,
        variables=dict(ctx.variables),
        user_claims=dict(ctx.user_claims),
    )
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        hint = (
            "give them at dispatch with ActivitySpec(deps=...)"
            if envelope is None
            else "check the deps given at dispatch and the previous step's output"
        )
        raise NonRetryableError(
            f"step {ctx.activity!r} could not build its deps {cls.__qualname__} ({hint}): {exc}"
        ) from exc
