"""Running one delivery: verify, run the step (or its compensation), then forward or fault."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Mapping
from typing import Any

from pydantic_core import to_jsonable_python

from ..errors import (
    ActivityTimeoutError,
    IdentityProviderUnavailableError,
    InvalidTokenError,
    MessageTooLargeError,
    NonRetryableError,
)
from ..security.identity import IdentityProvider
from ..settings import namespace
from ..transports.base import Delivery, Outgoing, Transport
from ..transports.leases import LeaseGroup, heartbeat_interval
from ..transports.queues import activity_queue, compensate_queue
from ..workflow.codec import (
    MalformedMessageError,
    canonical_json,
    parse_message,
    serialize_message,
    serialize_model,
)
from ..workflow.events import EventType, WorkflowEvent
from ..workflow.messages import (
    ActivityLogEntry,
    ActivitySpec,
    CompensateLogEntry,
    Fault,
    PaigeantMessage,
    RetryPolicy,
    hop_message_id,
    utcnow,
)
from ..workflow.tracing import TRACEPARENT, child_traceparent, trace_id
from ..workflow.wire import CORRELATION_HEADER, RejectedMessage, Wire
from .activity import Activity
from .context import ActivityContext

__all__ = ["StepRunner"]

logger = logging.getLogger(__name__)

#: Outputs that are JSON as they are (floats are not: NaN and infinities are refused).
_PLAIN_JSON = (str, int, bool, type(None))


class StepRunner:
    """Executes or compensates the step a delivery carries, then settles the delivery."""

    def __init__(
        self,
        transport: Transport,
        activities: Mapping[str, Activity],
        wire: Wire,
        *,
        worker_id: str,
        identity_provider: IdentityProvider | None = None,
    ) -> None:
        """Run ``activities`` for deliveries from ``transport``, sealing hops with ``wire``."""
        self.transport = transport
        self.activities = dict(activities)
        self.wire = wire
        self.worker_id = worker_id
        self.identity_provider = identity_provider
        self._namespace = namespace()
        self._queues: dict[tuple[str, bool], str] = {}
        # One heartbeat timer for every step in flight, not one per step.
        self._leases = LeaseGroup(lambda: heartbeat_interval(transport))

    def _queue(self, name: str, *, compensation: bool = False) -> str:
        """Queue of ``name`` (or of its compensation), cached: names are fixed per worker."""
        key = (name, compensation)
        queue = self._queues.get(key)
        if queue is None:
            make = compensate_queue if compensation else activity_queue
            queue = self._queues[key] = make(name, ns=self._namespace)
        return queue

    # -- entry point -----------------------------------------------------------------------

    async def handle(self, delivery: Delivery, queue: str) -> None:
        """Process one delivery from ``queue``; never raises for a bad message."""
        try:
            # Wire.open checks the size and the signature; the body is parsed only after both.
            message = parse_message(self.wire.open(delivery))
        except RejectedMessage as exc:
            await self._reject(delivery, queue, exc.reason)
            return
        except MalformedMessageError as exc:
            await self._reject(delivery, queue, f"malformed message: {exc}")
            return
        if message.routing_slip.fault is None:
            await self._execute(delivery, queue, message)
        else:
            await self._compensate(delivery, queue, message)

    async def _reject(
        self, delivery: Delivery, queue: str, reason: str, correlation_id: str | None = None
    ) -> None:
        cid = correlation_id or delivery.headers.get(CORRELATION_HEADER, "?")
        logger.error(
            "[%s] dead-lettering message %s from %s: %s",
            cid,
            delivery.message_id,
            queue,
            reason,
            extra={"correlation_id": cid},
        )
        await delivery.dead_letter(reason)

    # -- execution -------------------------------------------------------------------------

    async def _execute(self, delivery: Delivery, queue: str, message: PaigeantMessage) -> None:
        spec = message.current
        cid = message.correlation_id
        if spec is None:
            await self._reject(delivery, queue, "routing slip has no step to run", cid)
            return
        activity = self.activities.get(spec.name)
        if activity is None:
            hosted = ", ".join(sorted(self.activities)) or "none"
            reason = f"unknown activity {spec.name!r} (this worker hosts: {hosted})"
            await self._reject(delivery, queue, reason, cid)
            return
        if queue != self._queue(spec.name):
            reason = f"step {spec.name!r} arrived on queue {queue!r}, not its own"
            await self._reject(delivery, queue, reason, cid)
            return
        try:
            claims = {} if message.obo_token is None else await self._claims(message)
        except InvalidTokenError as exc:
            fault = Fault(
                activity=spec.name,
                error_type="InvalidTokenError",
                error=f"on-behalf-of token rejected: {exc}",
                attempt=delivery.attempt,
            )
            logger.warning("[%s] %s; faulting workflow", cid, fault.error)
            await self._fault(delivery, message, fault)
            return
        except IdentityProviderUnavailableError as exc:
            await self._failed(delivery, message, activity, spec, exc)  # a failed attempt
            return
        log = message.routing_slip.activity_log
        ctx = ActivityContext(
            correlation_id=cid,
            activity=spec.name,
            attempt=delivery.attempt,
            idempotency_key=message.message_id,
            arguments=spec.arguments,
            variables=dict(message.routing_slip.variables),
            previous_output=log[-1].output if log else None,
            outputs={entry.name: entry.output for entry in log},
            user_claims=claims,
            prompt=spec.prompt,
            spec=spec,
            obo_token=message.obo_token,
            worker=self.worker_id,
            added_steps=message.routing_slip.added_steps,
            heartbeat=delivery.extend,
        )
        if self._wanted(message, EventType.ACTIVITY_STARTED):
            await self._announce_attempt(
                delivery,
                message,
                WorkflowEvent(
                    type=EventType.ACTIVITY_STARTED,
                    correlation_id=cid,
                    activity=spec.name,
                    step=len(log),
                    attempt=delivery.attempt,
                    worker=self.worker_id,
                ),
            )
        started_at, started = utcnow(), time.perf_counter()
        try:
            self._leases.hold(delivery, cid)
            try:
                output = await _with_timeout(
                    activity.execute(ctx), spec.timeout or activity.timeout, spec.name
                )
            finally:
                self._leases.release(delivery)
            output = to_jsonable_python(output)
            if not isinstance(output, _PLAIN_JSON):
                canonical_json(output)  # fails the step now, not the forward later
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._failed(delivery, message, activity, spec, exc)
            return
        duration = time.perf_counter() - started
        logger.info(
            "[%s] %s completed (attempt %d, %.3fs)",
            cid,
            spec.name,
            delivery.attempt,
            duration,
            extra={"correlation_id": cid},
        )
        await self._completed(delivery, queue, message, activity, ctx, output, started_at, duration)

    async def _claims(self, message: PaigeantMessage) -> dict[str, Any]:
        if message.obo_token is None:
            return {}
        if self.identity_provider is None:
            raise InvalidTokenError(
                "the workflow carries an on-behalf-of token but this worker has no identity "
                "provider configured (set PAIGEANT_OBO_JWKS, PAIGEANT_OBO_PUBLIC_KEY or "
                "PAIGEANT_OBO_SECRET)"
            )
        return dict(await self.identity_provider.validate_async(message.obo_token))

    async def _compensation_claims(self, message: PaigeantMessage) -> dict[str, Any]:
        """Claims for a compensation, which must run even once the token has expired.

        It undoes work the token authorised when that work ran, so the provider's
        ``validate_for_compensation`` accepts an expired but otherwise valid token; a token
        that fails anything else (or a provider that cannot answer) gives empty claims.
        """
        if message.obo_token is None or self.identity_provider is None:
            return {}
        try:
            token = message.obo_token
            return dict(await self.identity_provider.validate_for_compensation_async(token))
        except (InvalidTokenError, IdentityProviderUnavailableError) as exc:
            logger.warning(
                "[%s] compensating with empty user claims: %s",
                message.correlation_id,
                exc,
                extra={"correlation_id": message.correlation_id},
            )
            return {}

    async def _completed(
        self,
        delivery: Delivery,
        queue: str,
        message: PaigeantMessage,
        activity: Activity,
        ctx: ActivityContext,
        output: Any,
        started_at: Any,
        duration: float,
    ) -> None:
        slip = message.routing_slip
        spec = slip.itinerary.pop(0)
        step = len(slip.activity_log)
        slip.activity_log.append(
            ActivityLogEntry(
                name=spec.name,
                output=output,
                started_at=started_at,
                finished_at=utcnow(),
                attempt=delivery.attempt,
                worker=self.worker_id,
            )
        )
        if activity.compensation is not None:
            slip.compensate_log.append(
                CompensateLogEntry(
                    name=spec.name, output=output, log_index=len(slip.activity_log) - 1
                )
            )
        slip.variables = ctx.variables
        events: list[WorkflowEvent] = []
        if self._wanted(message, EventType.ACTIVITY_COMPLETED):
            # Built only when subscribed: by default this per-hop event goes nowhere.
            events.append(
                WorkflowEvent(
                    type=EventType.ACTIVITY_COMPLETED,
                    correlation_id=message.correlation_id,
                    activity=spec.name,
                    step=step,
                    attempt=delivery.attempt,
                    duration=duration,
                    output=output,
                    worker=self.worker_id,
                )
            )
        if ctx.added_activities:
            slip.itinerary[0:0] = ctx.added_activities
            slip.added_steps += len(ctx.added_activities)
            events.append(
                WorkflowEvent(
                    type=EventType.ITINERARY_REVISED,
                    correlation_id=message.correlation_id,
                    activity=spec.name,
                    step=step,
                    added=list(ctx.added_activities),
                )
            )
        if ctx.terminated_reason is not None:
            events.append(
                self._final(EventType.WORKFLOW_TERMINATED, message, ctx.terminated_reason)
            )
        elif not slip.itinerary:
            events.append(self._final(EventType.WORKFLOW_COMPLETED, message))
        announcements = self._event_messages(message, events)
        forward: list[Outgoing] = []
        if slip.itinerary and ctx.terminated_reason is None:
            next_queue = self._queue(slip.itinerary[0].name)
            try:
                forward.append(self._next_hop(message, next_queue))
            except MessageTooLargeError as exc:
                await self._reject(
                    delivery, queue, f"cannot forward: {exc}", message.correlation_id
                )
                return
        await delivery.ack(forward=forward + announcements)

    # -- failure and compensation ----------------------------------------------------------

    async def _failed(
        self,
        delivery: Delivery,
        message: PaigeantMessage,
        activity: Activity,
        spec: ActivitySpec,
        exc: BaseException,
    ) -> None:
        cid = message.correlation_id
        policy = spec.retry or activity.retry
        if self._should_retry(policy, delivery.attempt, exc):
            delay = policy.delay_for(delivery.attempt)
            logger.warning(
                "[%s] %s failed on attempt %d (%s: %s); retrying in %.2fs",
                cid,
                spec.name,
                delivery.attempt,
                type(exc).__name__,
                exc,
                delay,
                extra={"correlation_id": cid},
            )
            if self._wanted(message, EventType.ACTIVITY_RETRIED):
                await self._announce_attempt(
                    delivery,
                    message,
                    WorkflowEvent(
                        type=EventType.ACTIVITY_RETRIED,
                        correlation_id=cid,
                        activity=spec.name,
                        step=len(message.routing_slip.activity_log),
                        attempt=delivery.attempt,
                        error=f"{type(exc).__name__}: {exc}",
                        retry_delay=delay,
                        worker=self.worker_id,
                    ),
                )
            await delivery.nack(delay=delay)
            return
        fault = Fault(
            activity=spec.name,
            error_type=type(exc).__name__,
            error=str(exc) or type(exc).__name__,
            attempt=delivery.attempt,
        )
        logger.error(
            "[%s] %s faulted after %d attempt(s): %s: %s",
            cid,
            spec.name,
            delivery.attempt,
            fault.error_type,
            fault.error,
            extra={"correlation_id": cid},
        )
        await self._fault(delivery, message, fault)

    def _should_retry(self, policy: RetryPolicy, attempt: int, exc: BaseException) -> bool:
        if isinstance(exc, NonRetryableError):
            return False
        return attempt < min(policy.max_attempts, self.transport.max_deliveries)

    async def _fault(self, delivery: Delivery, message: PaigeantMessage, fault: Fault) -> None:
        slip = message.routing_slip
        slip.fault = fault
        events = [
            WorkflowEvent(
                type=EventType.ACTIVITY_FAULTED,
                correlation_id=message.correlation_id,
                activity=fault.activity,
                step=len(slip.activity_log),
                attempt=fault.attempt,
                error=f"{fault.error_type}: {fault.error}",
                fault=fault,
                worker=self.worker_id,
            )
        ]
        await delivery.ack(forward=self._compensate_next_or_finish(message, events))

    async def _compensate(self, delivery: Delivery, queue: str, message: PaigeantMessage) -> None:
        slip = message.routing_slip
        cid = message.correlation_id
        if not slip.compensate_log:
            await self._reject(
                delivery, queue, "faulted routing slip has nothing to compensate", cid
            )
            return
        entry = slip.compensate_log[-1]
        activity = self.activities.get(entry.name)
        if activity is None or activity.compensation is None:
            reason = f"no compensation for activity {entry.name!r} on this worker"
            await self._reject(delivery, queue, reason, cid)
            return
        if queue != self._queue(entry.name, compensation=True):
            reason = f"compensation of {entry.name!r} arrived on queue {queue!r}, not its own"
            await self._reject(delivery, queue, reason, cid)
            return
        ctx = await self._compensation_context(delivery, message, entry)
        try:
            self._leases.hold(delivery, cid)
            try:
                await _with_timeout(activity.run_compensation(ctx), activity.timeout, entry.name)
            finally:
                self._leases.release(delivery)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if self._should_retry(activity.retry, delivery.attempt, exc):
                await delivery.nack(delay=activity.retry.delay_for(delivery.attempt))
                return
            error = f"compensation of {entry.name!r} failed: {type(exc).__name__}: {exc}"
            logger.error("[%s] %s", cid, error, extra={"correlation_id": cid})
            event = self._final(EventType.WORKFLOW_COMPENSATION_FAILED, message)
            event.error, event.activity, event.step = error, entry.name, entry.log_index
            await delivery.ack(forward=self._event_messages(message, [event]))
            return
        logger.info("[%s] %s compensated", cid, entry.name, extra={"correlation_id": cid})
        slip.compensate_log.pop()
        slip.compensated.append(entry.name)
        events = [
            WorkflowEvent(
                type=EventType.ACTIVITY_COMPENSATED,
                correlation_id=cid,
                activity=entry.name,
                step=entry.log_index,
                attempt=delivery.attempt,
                worker=self.worker_id,
            )
        ]
        await delivery.ack(forward=self._compensate_next_or_finish(message, events))

    async def _compensation_context(
        self, delivery: Delivery, message: PaigeantMessage, entry: CompensateLogEntry
    ) -> ActivityContext:
        log = message.routing_slip.activity_log
        claims = await self._compensation_claims(message)
        return ActivityContext(
            correlation_id=message.correlation_id,
            activity=entry.name,
            attempt=delivery.attempt,
            idempotency_key=message.message_id,
            variables=dict(message.routing_slip.variables),
            previous_output=log[entry.log_index - 1].output if entry.log_index > 0 else None,
            outputs={e.name: e.output for e in log},
            output=entry.output,
            user_claims=claims,
            obo_token=message.obo_token,
            worker=self.worker_id,
            compensating=True,
            heartbeat=delivery.extend,
        )

    # -- building messages -----------------------------------------------------------------

    def _compensate_next_or_finish(
        self, message: PaigeantMessage, events: list[WorkflowEvent]
    ) -> list[Outgoing]:
        """Route a faulted slip to its next compensation, or announce WorkflowFaulted."""
        slip = message.routing_slip
        if not slip.compensate_log:
            events.append(self._final(EventType.WORKFLOW_FAULTED, message))
        announcements = self._event_messages(message, events)
        if not slip.compensate_log:
            return announcements
        next_queue = self._queue(slip.compensate_log[-1].name, compensation=True)
        return [self._next_hop(message, next_queue), *announcements]

    def _next_hop(self, message: PaigeantMessage, queue: str) -> Outgoing:
        """Seal ``message`` (already updated) as the next hop, with a deterministic id."""
        hop = message.hop + 1
        traceparent = child_traceparent(message.headers.get(TRACEPARENT))
        message.hop = hop
        message.message_id = hop_message_id(message.correlation_id, hop)
        message.headers = {**message.headers, TRACEPARENT: traceparent}
        message.sent_at = utcnow()
        body = serialize_message(message)
        return self.wire.seal(
            queue,
            body,
            message_id=message.message_id,
            correlation_id=message.correlation_id,
            traceparent=traceparent,
        )

    def _final(
        self, kind: EventType, message: PaigeantMessage, reason: str | None = None
    ) -> WorkflowEvent:
        slip = message.routing_slip
        fault = slip.fault
        return WorkflowEvent(
            type=kind,
            correlation_id=message.correlation_id,
            error=f"{fault.error_type}: {fault.error}" if fault else None,
            fault=fault,
            reason=reason,
            variables=slip.variables,
            activity_log=slip.activity_log,
            compensated=slip.compensated,
            worker=self.worker_id,
        )

    @staticmethod
    def _wanted(message: PaigeantMessage, kind: EventType) -> bool:
        """Whether any subscription of the slip receives ``kind`` (else the event is not built)."""
        return any(sub.wants(kind) for sub in message.routing_slip.subscriptions)

    async def _announce_attempt(
        self, delivery: Delivery, message: PaigeantMessage, event: WorkflowEvent
    ) -> None:
        """Publish a per-attempt event now (it rides on no ack); its id names the attempt.

        Best effort: these opt-in events only inform monitoring, so a publish that fails (the
        monitor queue refused it, the broker blinked) is logged and the step goes on exactly
        as it would have; its outcome and its retry delay never depend on monitoring.
        """
        suffix = f"{event.type}.{delivery.attempt}"
        if delivery.message_id != message.message_id:  # e.g. a redriven dead letter
            suffix = f"{event.type}.{delivery.message_id}.{delivery.attempt}"
        for out in self._event_messages(message, [event], suffix=suffix):
            try:
                await self.transport.publish(
                    out.queue, out.body, message_id=out.message_id, headers=out.headers
                )
            except Exception as exc:
                cid = message.correlation_id
                logger.warning(
                    "[%s] %s event of %s (attempt %d) not sent to %s: %s: %s; the step goes on",
                    cid,
                    event.type,
                    event.activity,
                    delivery.attempt,
                    out.queue,
                    type(exc).__name__,
                    exc,
                    extra={"correlation_id": cid},
                )

    def _event_messages(
        self, message: PaigeantMessage, events: list[WorkflowEvent], *, suffix: str | None = None
    ) -> list[Outgoing]:
        out: list[Outgoing] = []
        if not events:
            return out
        subscriptions = message.routing_slip.subscriptions
        traceparent = message.headers.get(TRACEPARENT)
        for event in events:
            targets = [sub.queue for sub in subscriptions if sub.wants(event.type)]
            if not targets:
                continue
            event.id = f"{message.message_id}.{suffix or event.type}"
            event.trace_id = trace_id(traceparent)
            body = serialize_model(event)
            try:
                out.extend(
                    self.wire.seal_for(
                        targets,
                        body,
                        message_id=event.id,
                        correlation_id=message.correlation_id,
                        traceparent=traceparent,
                    )
                )
            except MessageTooLargeError as exc:
                logger.error("[%s] event %s not sent: %s", message.correlation_id, event.type, exc)
        return out


def _with_timeout(awaitable: Awaitable[Any], timeout: float | None, name: str) -> Awaitable[Any]:
    """``awaitable`` as it is without a timeout (no extra coroutine per step), else bounded."""
    return awaitable if timeout is None else _bounded(awaitable, timeout, name)


async def _bounded(awaitable: Awaitable[Any], timeout: float, name: str) -> Any:
    deadline = asyncio.timeout(timeout)
    try:
        async with deadline:
            return await awaitable
    except TimeoutError:
        if deadline.expired():
            raise ActivityTimeoutError(f"activity {name!r} timed out after {timeout}s") from None
        raise
