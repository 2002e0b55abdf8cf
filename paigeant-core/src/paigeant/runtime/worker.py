"""Worker: consumes the queues of its activities and runs steps concurrently, draining on stop."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import socket
import uuid
from collections.abc import Iterable

from ..security.identity import IdentityProvider
from ..security.signer import Signer
from ..transports.base import Delivery, Transport
from ..transports.consuming import consume_resiliently
from ..transports.queues import activity_queue, compensate_queue
from ..workflow.wire import Wire
from .activity import Activity, SupportsActivity, as_activity
from .identity_choice import resolve_identity_provider
from .signer_choice import resolve_signer
from .step import StepRunner

__all__ = ["Worker"]

logger = logging.getLogger(__name__)

_running: set[Worker] = set()


def _stop_all_workers() -> None:
    logger.info("SIGTERM received: draining %d worker(s)", len(_running))
    for worker in list(_running):
        worker.stop()


class Worker:
    """Runs the steps of its activities from their queues until cancelled or SIGTERM."""

    def __init__(
        self,
        transport: Transport,
        activities: Iterable[Activity | SupportsActivity],
        *,
        concurrency: int = 10,
        signer: Signer | str | None = None,
        identity_provider: IdentityProvider | str | None = None,
        drain_timeout: float = 30.0,
        handle_signals: bool = True,
        name: str | None = None,
    ) -> None:
        """Serve ``activities`` on ``transport`` with at most ``concurrency`` steps at once."""
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        hosted: dict[str, Activity] = {}
        for item in activities:
            act = as_activity(item)
            if act.name in hosted and hosted[act.name] is not act:
                raise ValueError(f"two different activities are named {act.name!r}")
            hosted[act.name] = act
        if not hosted:
            raise ValueError("a worker needs at least one activity")
        self.transport = transport
        self.activities = hosted
        self.concurrency = concurrency
        self.drain_timeout = drain_timeout
        self.handle_signals = handle_signals
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        # Resolved now, so a worker that would run unsigned across processes refuses to start.
        self.signer = resolve_signer(transport, signer)
        self._identity_choice = identity_provider
        self._stop: asyncio.Event | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self.ready = asyncio.Event()

    @property
    def queues(self) -> list[str]:
        """The queues this worker consumes: each activity's, plus compensation queues."""
        names = []
        for act in self.activities.values():
            names.append(activity_queue(act.name))
            if act.compensation is not None:
                names.append(compensate_queue(act.name))
        return names

    def stop(self) -> None:
        """Ask the worker to stop taking new steps and drain the ones in flight."""
        if self._stop is not None:
            self._stop.set()

    async def run(self) -> None:
        """Consume and run steps until ``stop()``, SIGTERM or cancellation; then drain."""
        await self.transport.connect()
        runner = StepRunner(
            self.transport,
            self.activities,
            Wire(self.signer),
            worker_id=self.name,
            identity_provider=resolve_identity_provider(self._identity_choice),
        )
        self._stop = asyncio.Event()
        slots = asyncio.Semaphore(self.concurrency)
        loops = [
            asyncio.ensure_future(self._consume(runner, queue, slots)) for queue in self.queues
        ]
        self._install_signal_handler()
        logger.info("worker %s serving %s", self.name, ", ".join(self.activities))
        self.ready.set()
        try:
            stop = asyncio.ensure_future(self._stop.wait())
            await asyncio.wait([stop, *loops], return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
        finally:
            self.ready.clear()
            self._remove_signal_handler()
            for loop_task in loops:
                loop_task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            await self._drain()

    async def _consume(self, runner: StepRunner, queue: str, slots: asyncio.Semaphore) -> None:
        deliveries = consume_resiliently(self.transport, queue, prefetch=self.concurrency)
        try:
            while True:
                await slots.acquire()
                try:
                    delivery = await anext(deliveries)
                except BaseException:
                    slots.release()
                    raise
                task = asyncio.ensure_future(self._run_one(runner, delivery, queue))
                self._inflight.add(task)
                task.add_done_callback(functools.partial(self._finished, slots))
        except StopAsyncIteration:
            return  # the transport disconnected
        finally:
            await deliveries.aclose()

    def _finished(self, slots: asyncio.Semaphore, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        slots.release()

    async def _run_one(self, runner: StepRunner, delivery: Delivery, queue: str) -> None:
        try:
            await runner.handle(delivery, queue)
        except asyncio.CancelledError:
            await asyncio.shield(_give_back(delivery))
            raise
        except Exception:
            logger.exception(
                "internal error handling message %s; redelivering", delivery.message_id
            )
            await _give_back(delivery, delay=1.0)

    async def _drain(self) -> None:
        if not self._inflight:
            return
        logger.info("draining %d in-flight step(s)", len(self._inflight))
        _done, pending = await asyncio.wait(set(self._inflight), timeout=self.drain_timeout)
        for task in pending:
            task.cancel()
        if pending:
            logger.warning(
                "%d step(s) not finished in time; they will be redelivered", len(pending)
            )
            await asyncio.gather(*pending, return_exceptions=True)

    def _install_signal_handler(self) -> None:
        if not self.handle_signals:
            return
        if not _running:
            try:
                asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, _stop_all_workers)
            except (NotImplementedError, RuntimeError, ValueError):
                return  # not the main thread, or no signal support here
        _running.add(self)

    def _remove_signal_handler(self) -> None:
        if self not in _running:
            return
        _running.discard(self)
        if not _running:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                asyncio.get_running_loop().remove_signal_handler(signal.SIGTERM)


async def _give_back(delivery: Delivery, delay: float = 0.0) -> None:
    """Return a delivery for redelivery, tolerating a transport that is already gone."""
    try:
        await delivery.nack(delay=delay)
    except Exception:
        logger.warning(
            "could not nack %s; it is redelivered when its lease ends", delivery.message_id
        )
