"""The monitor: consumes the monitor queue and records every event in a WorkflowStore.

Each delivery is verified like any worker's (size, then signature, before parsing); a bad one is
dead-lettered with the reason. Good ones are recorded in batches, one store transaction per
batch, and acknowledged only after it committed: a monitor killed mid-batch loses nothing, and
the redelivered events change nothing (the store applies each event id once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence

from pydantic import ValidationError

from ..errors import StoreUnavailableError
from ..runtime.signer_choice import resolve_signer
from ..security.signer import Signer
from ..transports.base import Delivery, Transport
from ..transports.queues import monitor_queue
from ..workflow.events import WorkflowEvent
from ..workflow.wire import CORRELATION_HEADER, RejectedMessage, Wire
from .base import WorkflowStore
from .records import WorkflowRecord

__all__ = ["Monitor"]

logger = logging.getLogger(__name__)

#: Errors that mean the store is down (hold the batch and retry) rather than a bad event.
_UNAVAILABLE = (StoreUnavailableError, ConnectionError, OSError, TimeoutError)
_FINAL = frozenset({"completed", "faulted", "terminated", "compensation_failed"})


class Monitor:
    """Records the events of monitored workflows (``WorkflowDispatcher(monitor=True)``) in ``store``.

    ``await monitor.run()`` until ``stop()`` or cancellation. Several monitors may consume the
    same queue; each event is recorded once whichever of them gets it.
    """

    def __init__(
        self,
        transport: Transport,
        store: WorkflowStore,
        *,
        queue: str | None = None,
        signer: Signer | str | None = None,
        batch_size: int = 200,
        retry_delay: float = 1.0,
    ) -> None:
        """Consume ``queue`` (default ``monitor_queue()``) on ``transport`` into ``store``.

        Args:
            signer: verifies events as workers do (default as for workers: PAIGEANT_SIGNER...).
            batch_size: most events recorded in one store transaction.
            retry_delay: seconds before an event the store refused is redelivered.
        """
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.transport = transport
        self.store = store
        self.queue = queue or monitor_queue()
        self.batch_size = batch_size
        self.retry_delay = retry_delay
        # Resolved now, so a monitor that would accept unsigned events refuses to start.
        self.wire = Wire(resolve_signer(transport, signer))
        #: Set while the monitor consumes its queue.
        self.ready = asyncio.Event()
        #: Events recorded (new or already known) and deliveries dead-lettered, since start.
        self.recorded = 0
        self.rejected = 0
        self._stop = asyncio.Event()
        self._progress = asyncio.Condition()

    def stop(self) -> None:
        """Finish the batch in hand, give back what is not started, and return from ``run``."""
        self._stop.set()

    async def run(self) -> None:
        """Consume and record until ``stop()`` or cancellation."""
        await self.transport.connect()
        await self.store.connect()
        self._stop.clear()
        inbox: asyncio.Queue[Delivery] = asyncio.Queue()
        pump = asyncio.ensure_future(self._pump(inbox))
        stop = asyncio.ensure_future(self._stop.wait())
        self.ready.set()
        logger.info("monitor recording %s into %s", self.queue, self.store.describe())
        committing: asyncio.Future[None] | None = None
        try:
            while not self._stop.is_set():
                take = asyncio.ensure_future(inbox.get())
                await asyncio.wait([take, stop, pump], return_when=asyncio.FIRST_COMPLETED)
                if not take.done():
                    take.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await take
                    if pump.done():
                        pump.result()  # the transport disconnected (or consuming failed)
                        break
                    continue
                batch = [take.result()]
                while len(batch) < self.batch_size and not inbox.empty():
                    batch.append(inbox.get_nowait())
                # Verify and parse this batch while the previous one commits; one commit at a time.
                events, accepted = await self._open_all(batch)
                if committing is not None:
                    await committing
                    committing = None
                if events:
                    committing = asyncio.ensure_future(self._commit(events, accepted))
            if committing is not None:  # stopped: the batch in hand still commits
                await committing
        except asyncio.CancelledError:
            if committing is not None:  # killed: nothing more is acked; it all comes back
                committing.cancel()
            raise
        finally:
            self.ready.clear()
            stop.cancel()
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pump
            leftovers = []
            while not inbox.empty():
                leftovers.append(inbox.get_nowait())
            await asyncio.shield(_give_back(leftovers))

    async def _pump(self, inbox: asyncio.Queue[Delivery]) -> None:
        prefetch = self.batch_size * 2
        async for delivery in self.transport.consume(self.queue, prefetch=prefetch):
            inbox.put_nowait(delivery)

    async def _open_all(
        self, batch: Sequence[Delivery]
    ) -> tuple[list[WorkflowEvent], list[Delivery]]:
        events: list[WorkflowEvent] = []
        accepted: list[Delivery] = []
        for delivery in batch:
            event = await self._open(delivery)
            if event is not None:
                events.append(event)
                accepted.append(delivery)
        return events, accepted

    async def _open(self, delivery: Delivery) -> WorkflowEvent | None:
        """The verified event of ``delivery``, or None after dead-lettering it with a reason."""
        try:
            event = WorkflowEvent.model_validate_json(self.wire.open(delivery))
        except RejectedMessage as exc:
            reason = exc.reason
        except ValidationError as exc:
            reason = f"malformed event: {_first_error(exc)}"
        else:
            if event.id is None:
                event.id = delivery.message_id
            return event
        cid = delivery.headers.get(CORRELATION_HEADER, "?")
        logger.error(
            "[%s] dead-lettering event %s from %s: %s",
            cid,
            delivery.message_id,
            delivery.queue,
            reason,
            extra={"correlation_id": cid},
        )
        self.rejected += 1
        await delivery.dead_letter(reason)
        return None

    async def _commit(self, events: list[WorkflowEvent], deliveries: list[Delivery]) -> None:
        """Record the batch, then ack it; hold it while the store is down; split a bad batch."""
        backoff = 0.2
        while True:
            try:
                await self.store.record_many(events)
                break
            except _UNAVAILABLE as exc:
                if self._stop.is_set():
                    await _give_back(deliveries)
                    return
                logger.warning("workflow store unavailable (%s); retrying in %.1fs", exc, backoff)
                await _keep_leases(deliveries)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
            except Exception:
                if len(events) > 1:
                    for event, delivery in zip(events, deliveries, strict=True):
                        await self._commit([event], [delivery])
                    return
                logger.exception(
                    "[%s] the store could not record event %s; redelivering it in %.1fs",
                    events[0].correlation_id,
                    events[0].id,
                    self.retry_delay,
                )
                await _give_back(deliveries, self.retry_delay)
                return
        await asyncio.gather(*(delivery.ack() for delivery in deliveries))
        self.recorded += len(events)
        async with self._progress:
            self._progress.notify_all()

    async def wait_recorded(self, correlation_id: str, *, timeout: float = 30.0) -> WorkflowRecord:
        """Wait until the store holds ``correlation_id`` in a final status; TimeoutError if not."""
        deadline = time.monotonic() + timeout
        while True:
            record = await self.store.get(correlation_id)
            if record is not None and record.status in _FINAL:
                return record
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"workflow {correlation_id} was not recorded as finished within {timeout}s"
                )
            async with self._progress:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._progress.wait(), min(remaining, 0.5))


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return str(exc)
    first = errors[0]
    where = ".".join(str(part) for part in first.get("loc", ())) or "body"
    return f"{where}: {first.get('msg', 'invalid')} ({len(errors)} error(s))"


async def _keep_leases(deliveries: Sequence[Delivery]) -> None:
    for delivery in deliveries:
        try:
            await delivery.extend()
        except Exception:  # the lease may be gone: the event comes back, and changes nothing
            logger.debug("could not extend the lease of %s", delivery.message_id)


async def _give_back(deliveries: Sequence[Delivery], delay: float = 0.0) -> None:
    for delivery in deliveries:
        try:
            await delivery.nack(delay=delay)
        except Exception:
            logger.warning(
                "could not give back %s; it returns when its lease ends", delivery.message_id
            )
