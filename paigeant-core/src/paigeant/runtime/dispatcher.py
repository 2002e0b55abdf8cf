"""WorkflowDispatcher: start workflows and wait for their results on a private reply queue."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import socket
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from pydantic import ValidationError

from ..security.signer import Signer
from ..settings import env_bool, env_str, namespace
from ..transports.base import Delivery, Transport
from ..transports.queues import activity_queue, monitor_queue
from ..workflow.codec import serialize_message, serialize_model
from ..workflow.events import TERMINAL_EVENTS, EventType, WorkflowEvent, WorkflowResult
from ..workflow.messages import (
    EVERY_EVENT,
    ActivitySpec,
    PaigeantMessage,
    RoutingSlip,
    Subscription,
    hop_message_id,
)
from ..workflow.tracing import TRACEPARENT, new_traceparent, trace_id
from ..workflow.wire import RejectedMessage, Wire
from .signer_choice import resolve_signer

__all__ = ["EventHandler", "WorkflowDispatcher"]

logger = logging.getLogger(__name__)

EventHandler = Callable[[WorkflowEvent], Awaitable[None] | None]

_KEPT_RESULTS = 10_000
#: What the reply queue subscribes to when no ``on_event`` wants everything.
_TERMINAL_EVENT_NAMES = tuple(sorted(str(kind) for kind in TERMINAL_EVENTS))


class WorkflowDispatcher:
    """Dispatches routing slips and collects their terminal events for ``wait_for``."""

    def __init__(
        self,
        transport: Transport,
        *,
        signer: Signer | str | None = None,
        reply_queue: str | None = None,
        subscriptions: Iterable[Subscription] = (),
        on_event: EventHandler | None = None,
        monitor: bool | None = None,
        name: str | None = None,
    ) -> None:
        """Dispatch on ``transport``; ``on_event`` receives every event of its workflows.

        ``monitor=True`` subscribes every workflow to ``monitor_queue()`` for all event types
        (the opt-in per-attempt ones too), so a ``Monitor`` records it; ``None`` follows
        ``PAIGEANT_MONITOR`` (default off). ``name`` says who dispatched, in the
        WorkflowDispatched event (default ``<host>:<pid>``).
        """
        self.transport = transport
        self.reply_queue = reply_queue or f"{namespace()}.replies.{uuid.uuid4().hex}"
        self.on_event = on_event
        #: Whether workflows dispatched here are sent to the monitor queue.
        self.monitor = env_bool("PAIGEANT_MONITOR", False) if monitor is None else monitor
        #: Who dispatched, as recorded by the monitor.
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self._extra_subscriptions = list(subscriptions)
        # Resolved now, so a dispatcher that would send unsigned across processes refuses to start.
        #: The wire format (signer and size limit) this dispatcher seals messages with.
        self.wire = Wire(resolve_signer(transport, signer))
        self._listener: asyncio.Task[None] | None = None
        self._results: OrderedDict[str, WorkflowResult] = OrderedDict()
        self._waiters: dict[str, list[asyncio.Future[WorkflowResult]]] = {}
        # Workflows dispatched with results=False, so wait_for can say why it would never return.
        self._unanswered: OrderedDict[str, None] = OrderedDict()

    def _subscriptions(self, results: bool = True) -> list[Subscription]:
        subs = []
        if results:
            reply_events = [] if self.on_event else list(_TERMINAL_EVENT_NAMES)
            subs.append(Subscription(queue=self.reply_queue, events=reply_events))
        events_queue = env_str("PAIGEANT_EVENTS_QUEUE")
        if events_queue:
            subs.append(Subscription(queue=events_queue))
        if self.monitor:
            subs.append(Subscription(queue=monitor_queue(), events=[EVERY_EVENT]))
        return subs + [sub.model_copy() for sub in self._extra_subscriptions]

    async def dispatch_workflow(
        self,
        activities: Sequence[ActivitySpec | Mapping[str, Any]],
        variables: Mapping[str, Any] | None = None,
        obo_token: str | None = None,
        *,
        correlation_id: str | None = None,
        results: bool = True,
    ) -> str:
        """Send a new workflow to its first activity and return its correlation id.

        ``results=False`` dispatches and forgets: no event of this workflow comes back to this
        dispatcher (``wait_for`` refuses its id, ``on_event`` never sees it), so nothing is
        sent to a reply queue and none is created; a monitor still records it when monitoring
        is on. Use it when nobody waits here (``paigeant dispatch`` without ``--wait``): a
        reply queue would otherwise be created for a result nobody reads.
        """
        if not activities:
            raise ValueError("cannot dispatch an empty itinerary: give at least one ActivitySpec")
        if not results and self.on_event is not None:
            raise ValueError(
                "results=False sends no event back to this dispatcher, so its on_event would "
                "never see the workflow: dispatch with results=True, or subscribe a queue of "
                "your own (subscriptions=...)"
            )
        # Specs are only read here (the message is encoded at once), so no copies are made.
        itinerary = [
            spec if isinstance(spec, ActivitySpec) else ActivitySpec.model_validate(spec)
            for spec in activities
        ]
        cid = correlation_id or str(uuid.uuid4())
        traceparent = new_traceparent()
        message = PaigeantMessage(
            message_id=hop_message_id(cid, 0),
            correlation_id=cid,
            routing_slip=RoutingSlip(
                itinerary=itinerary,
                variables=dict(variables or {}),
                subscriptions=self._subscriptions(results),
            ),
            obo_token=obo_token,
            headers={TRACEPARENT: traceparent},
        )
        body = serialize_message(message)
        outgoing = self.wire.seal(
            activity_queue(itinerary[0].name),
            body,
            message_id=message.message_id,
            correlation_id=cid,
            traceparent=traceparent,
        )
        if results:
            self._unanswered.pop(cid, None)  # the same id dispatched again, answered this time
            await self._ensure_listening()
        else:
            _keep(self._unanswered, cid, None)
        await self.transport.publish(
            outgoing.queue, outgoing.body, message_id=outgoing.message_id, headers=outgoing.headers
        )
        await self._announce_dispatch(message, itinerary, traceparent)
        logger.info(
            "[%s] dispatched workflow: %s",
            cid,
            " -> ".join(spec.name for spec in itinerary),
            extra={"correlation_id": cid},
        )
        return cid

    async def _announce_dispatch(
        self, message: PaigeantMessage, itinerary: list[ActivitySpec], traceparent: str
    ) -> None:
        """Send WorkflowDispatched to the subscriptions that want it (after the first step).

        The workflow already runs, so a failure here is logged, not raised: raising would
        invite the caller to dispatch the same work twice.
        """
        slip = message.routing_slip
        kind = EventType.WORKFLOW_DISPATCHED
        targets = [sub.queue for sub in slip.subscriptions if sub.wants(kind)]
        if not targets:
            return
        cid = message.correlation_id
        event = WorkflowEvent(
            type=kind,
            correlation_id=cid,
            id=f"{message.message_id}.{kind}",
            timestamp=message.created_at,
            itinerary=itinerary,
            variables=slip.variables,
            dispatcher=self.name,
            trace_id=trace_id(traceparent),
        )
        try:
            body = serialize_model(event)
            for out in self.wire.seal_for(
                targets,
                body,
                message_id=event.id or "",
                correlation_id=cid,
                traceparent=traceparent,
            ):
                await self.transport.publish(
                    out.queue, out.body, message_id=out.message_id, headers=out.headers
                )
        except Exception as exc:
            logger.error(
                "[%s] workflow dispatched, but its WorkflowDispatched event was not sent: %s",
                cid,
                exc,
                extra={"correlation_id": cid},
            )

    async def wait_for(self, correlation_id: str, timeout: float | None = None) -> WorkflowResult:
        """Wait for the workflow to complete, fault or terminate; TimeoutError after ``timeout``.

        Raises ValueError at once for a workflow this dispatcher sent with ``results=False``.
        """
        result = self._results.pop(correlation_id, None)
        if result is not None:
            return result
        if correlation_id in self._unanswered:
            raise ValueError(
                f"workflow {correlation_id} was dispatched with results=False: its result is "
                "not sent to this dispatcher (follow it with a monitor, or dispatch with "
                "results=True to wait for it)"
            )
        await self._ensure_listening()
        future: asyncio.Future[WorkflowResult] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(correlation_id, []).append(future)
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise TimeoutError(
                f"workflow {correlation_id} did not finish within {timeout}s "
                "(are workers running for its activities on this transport?)"
            ) from None
        finally:
            waiters = self._waiters.get(correlation_id, [])
            if future in waiters:
                waiters.remove(future)
            if not waiters:
                self._waiters.pop(correlation_id, None)
            self._results.pop(correlation_id, None)

    async def _ensure_listening(self) -> None:
        if self._listener is None or self._listener.done():
            await self.transport.connect()
            self._listener = asyncio.ensure_future(self._listen())

    async def _listen(self) -> None:
        async for delivery in self.transport.consume(self.reply_queue, prefetch=64):
            try:
                await self._on_delivery(delivery)
            except Exception:
                logger.exception("could not handle event %s", delivery.message_id)
                await delivery.nack(delay=1.0)

    async def _on_delivery(self, delivery: Delivery) -> None:
        try:
            event = WorkflowEvent.model_validate_json(self.wire.open(delivery))
        except RejectedMessage as exc:
            await delivery.dead_letter(exc.reason)
            return
        except ValidationError as exc:
            await delivery.dead_letter(f"malformed event: {exc}")
            return
        if self.on_event is not None:
            outcome = self.on_event(event)
            if inspect.isawaitable(outcome):
                await outcome
        if event.type in TERMINAL_EVENTS:
            self._deliver(WorkflowResult.from_event(event))
        await delivery.ack()

    def _deliver(self, result: WorkflowResult) -> None:
        waiters = self._waiters.pop(result.correlation_id, [])
        pending = [future for future in waiters if not future.done()]
        for future in pending:
            future.set_result(result)
        if not pending:
            _keep(self._results, result.correlation_id, result)

    async def close(self) -> None:
        """Stop listening for results and delete the reply queue (if it ever listened)."""
        if self._listener is None:
            return  # every workflow went out with results=False: no reply queue to remove
        self._listener.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._listener
        self._listener = None
        with contextlib.suppress(Exception):
            await self.transport.delete_queue(self.reply_queue)

    async def __aenter__(self) -> WorkflowDispatcher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


_V = TypeVar("_V")


def _keep(kept: OrderedDict[str, _V], key: str, value: _V) -> None:
    """Remember ``value`` under ``key``, forgetting the oldest beyond ``_KEPT_RESULTS``."""
    kept[key] = value
    while len(kept) > _KEPT_RESULTS:
        kept.popitem(last=False)
