"""Activities: the ``@activity`` decorator and what a worker needs to run and compensate a step."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, runtime_checkable

from ..transports.queues import validate_activity_name
from ..workflow.messages import RetryPolicy
from .context import ActivityContext

__all__ = ["Activity", "ActivityFunction", "SupportsActivity", "activity", "as_activity"]

ActivityFunction = Callable[[ActivityContext], Awaitable[Any]]


class Activity:
    """A named step type: an async function, its retry policy, timeout and optional compensation."""

    def __init__(
        self,
        name: str,
        function: ActivityFunction,
        *,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        description: str | None = None,
    ) -> None:
        """Wrap ``function`` as activity ``name``."""
        if not inspect.iscoroutinefunction(function):
            raise TypeError(f"activity {name!r} must be an async function")
        if timeout is not None and timeout <= 0:
            raise ValueError(f"activity {name!r}: timeout must be positive")
        self.name = validate_activity_name(name)
        self.function = function
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self.description = description or inspect.getdoc(function) or ""
        self.compensation: ActivityFunction | None = None
        self.__doc__ = function.__doc__
        self.__wrapped__ = function

    def __repr__(self) -> str:
        return f"Activity({self.name!r})"

    def compensate(self, function: ActivityFunction) -> ActivityFunction:
        """Decorator: register ``function`` to undo this activity when the workflow faults."""
        if not inspect.iscoroutinefunction(function):
            raise TypeError(f"compensation of {self.name!r} must be an async function")
        self.compensation = function
        return function

    async def __call__(self, ctx: ActivityContext) -> Any:
        """Run the activity function (also handy in unit tests)."""
        return await self.function(ctx)

    async def execute(self, ctx: ActivityContext) -> Any:
        """Run one step of this activity."""
        return await self.function(ctx)

    async def run_compensation(self, ctx: ActivityContext) -> None:
        """Run the compensation, if any, with ``ctx.output`` set to this step's output."""
        if self.compensation is not None:
            await self.compensation(ctx)


@runtime_checkable
class SupportsActivity(Protocol):
    """Anything that can turn itself into an Activity (e.g. a PaigeantAgent)."""

    def as_activity(self) -> Activity:
        """Return the Activity that runs this object as a workflow step."""
        ...


def as_activity(obj: Activity | SupportsActivity) -> Activity:
    """Return ``obj`` as an Activity, converting agents and other providers."""
    if isinstance(obj, Activity):
        return obj
    if isinstance(obj, SupportsActivity):
        return obj.as_activity()
    raise TypeError(f"{obj!r} is not an activity: decorate an async function with @activity")


def activity(
    name: str | None = None,
    *,
    retry: RetryPolicy | None = None,
    timeout: float | None = None,
    description: str | None = None,
) -> Callable[[ActivityFunction], Activity]:
    """Decorator: make an async ``fn(ctx)`` an activity (name defaults to the function's)."""

    def decorate(function: ActivityFunction) -> Activity:
        activity_name = name or function.__name__.replace("_", "-")
        return Activity(
            activity_name, function, retry=retry, timeout=timeout, description=description
        )

    return decorate
