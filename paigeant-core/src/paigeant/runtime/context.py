"""ActivityContext: what a running step sees of its workflow, and how it can change it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..workflow.messages import ActivitySpec

if TYPE_CHECKING:
    import boto3

__all__ = ["ActivityContext"]


class ActivityContext:
    """The view of the workflow a step runs with: inputs, variables, outputs, identity, controls."""

    def __init__(
        self,
        *,
        correlation_id: str,
        activity: str,
        attempt: int,
        idempotency_key: str,
        arguments: Mapping[str, Any] | None = None,
        variables: dict[str, Any] | None = None,
        previous_output: Any = None,
        outputs: Mapping[str, Any] | None = None,
        output: Any = None,
        user_claims: Mapping[str, Any] | None = None,
        prompt: str | None = None,
        spec: ActivitySpec | None = None,
        obo_token: str | None = None,
        worker: str = "",
        compensating: bool = False,
        added_steps: int = 0,
        heartbeat: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Create a context; the worker does this for every step it runs."""
        self.correlation_id = correlation_id
        self.activity = activity
        self.attempt = attempt
        self.idempotency_key = idempotency_key
        self.arguments: dict[str, Any] = dict(arguments or {})
        self.variables: dict[str, Any] = variables if variables is not None else {}
        self.previous_output = previous_output
        self.outputs: dict[str, Any] = dict(outputs or {})
        self.output = output
        self.user_claims: dict[str, Any] = dict(user_claims or {})
        self.prompt = prompt
        self.spec = spec
        self.worker = worker
        self.compensating = compensating
        #: Steps added to this workflow's itinerary by earlier steps (for per-workflow limits).
        self.added_steps = added_steps
        self._obo_token = obo_token
        self._heartbeat = heartbeat
        self.added_activities: list[ActivitySpec] = []
        self.terminated_reason: str | None = None

    def __repr__(self) -> str:
        return (
            f"ActivityContext(correlation_id={self.correlation_id!r}, "
            f"activity={self.activity!r}, attempt={self.attempt})"
        )

    @property
    def has_obo_token(self) -> bool:
        """Whether the workflow carries an on-behalf-of token (never exposed in logs)."""
        return self._obo_token is not None

    async def heartbeat(self) -> None:
        """Renew this step's lease now (the worker also does so periodically).

        Raises ``LeaseLostError`` when the lease already ran out: the message may be with
        another worker, and a long step may choose to stop early.
        """
        if self._heartbeat is not None:
            await self._heartbeat()

    def add_activities(self, specs: Iterable[ActivitySpec | Mapping[str, Any]]) -> None:
        """Insert ``specs`` into the itinerary right after the current step, in order."""
        if self.compensating:
            raise RuntimeError("a compensation cannot revise the itinerary")
        self.added_activities.extend(
            spec if isinstance(spec, ActivitySpec) else ActivitySpec.model_validate(spec)
            for spec in specs
        )

    def terminate(self, reason: str) -> None:
        """End the workflow after this step, successfully and without compensation."""
        if self.compensating:
            raise RuntimeError("a compensation cannot terminate the workflow")
        self.terminated_reason = reason or "terminated"

    async def assume_web_identity(
        self,
        role_arn: str,
        session_name: str | None = None,
        duration_seconds: int = 3600,
    ) -> boto3.Session:
        """Return a boto3 Session with STS credentials assumed with the workflow's OBO token."""
        from ..security.aws import assume_web_identity

        return await assume_web_identity(
            self._obo_token,
            role_arn,
            session_name=session_name or f"paigeant-{self.correlation_id}"[:64],
            duration_seconds=duration_seconds,
        )
