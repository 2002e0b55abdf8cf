"""What every part of the transport conformance suite shares: capabilities, fixtures, helpers."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from ..errors import TransportConnectionError
from ..transports.base import Delivery, QueueStats, Transport
from ..transports.queues import dead_letter_queue
from ._receiver import Receiver

__all__ = ["SuiteBase"]


class SuiteBase:
    """Capabilities a subclass declares, the ``transport`` fixture and shared helpers."""

    pytestmark = pytest.mark.asyncio

    #: Lease set on every transport under test before it connects.
    visibility_timeout: float = 1.0
    #: ``max_deliveries`` set on every transport under test before it connects.
    max_deliveries: int = 3
    #: Extra seconds a redelivery (or a due delayed message) may take past its time.
    redelivery_grace: float = 5.0
    #: Whether ``publish(delay=)`` and ``nack(delay=)`` are implemented (DESIGN requires it).
    supports_delay: bool = True
    #: Smallest difference between two delays that the transport keeps in order.
    delay_resolution: float = 0.15
    #: Whether ``stats()`` is implemented.
    supports_stats: bool = True
    #: Whether the optional ``browse()`` is implemented (else it must raise NotImplementedError).
    supports_browse: bool = False
    #: Longest a ``publish`` may take while the broker is down before it must have raised
    #: TransportConnectionError.
    publish_failure_bound: float = 30.0
    #: Messages the chaos test sends through its three hops.
    chaos_messages: int = 200
    #: Largest body the broker under test accepts (its own limit, headers aside); the
    #: big-body test sends exactly that. Default 1 MiB: ``PAIGEANT_MAX_MESSAGE_BYTES``'s default.
    max_body_bytes: int = 1024 * 1024

    def make_transport(self) -> Transport:
        """Return a new, unconnected transport under test.

        Every transport it returns within one test must reach the same queues (the same
        broker), as separate processes would: the suite uses a second one as a "new process".
        """
        raise NotImplementedError(
            "define make_transport(self) in your TransportConformance subclass"
        )

    async def restart_broker(self) -> None:
        """Stop the broker ``make_transport()`` connects to, then start it again; optional.

        Define it to run the restart tests. Restart a broker of the tests' own (never a shared
        one), keep it down for a moment (say half a second) so publishes meet the outage, and
        return once it accepts connections again. Its data must survive (persistence on).
        """
        raise NotImplementedError("restart_broker is not defined")

    @contextlib.asynccontextmanager
    async def fail_next_forward(self, transport: Transport, queue: str) -> AsyncIterator[None]:
        """While inside, forwards to ``queue`` made by ``ack(forward=...)`` fail for real.

        The default makes ``transport.publish(queue, ...)`` raise TransportConnectionError,
        which proves forward-before-ack for a transport whose ``ack`` forwards through its
        own ``publish``. A transport with an atomic forward overrides it to make that forward
        fail inside the broker (say, by giving the target's key the wrong type).
        """
        real_publish = transport.publish

        async def failing_publish(target: str, *args: Any, **kwargs: Any) -> None:
            if target == queue:
                raise TransportConnectionError("forward failed (injected by fail_next_forward)")
            await real_publish(target, *args, **kwargs)

        setattr(transport, "publish", failing_publish)  # noqa: B010 - an instance override
        try:
            yield
        finally:
            with contextlib.suppress(AttributeError):
                delattr(transport, "publish")

    # -- capabilities ------------------------------------------------------------------------

    @property
    def has_restart(self) -> bool:
        """Whether the subclass defines ``restart_broker``."""
        return type(self).restart_broker is not SuiteBase.restart_broker

    def require_delays(self) -> None:
        """Skip unless delays are declared supported."""
        if not self.supports_delay:
            pytest.skip(
                "supports_delay = False: implement durable publish(delay=) and nack(delay=) "
                "(DESIGN section 3, 'Delays'), then set supports_delay = True"
            )

    def require_restart(self) -> None:
        """Skip unless the subclass defines ``restart_broker``."""
        if not self.has_restart:
            pytest.skip(
                "restart_broker is not defined: define `async def restart_broker(self)` that "
                "restarts a broker of the tests' own (with persistence) to run restart tests"
            )

    async def stats(self, transport: Transport, queue: str) -> QueueStats:
        """``transport.stats(queue)``; skips when declared unsupported, fails when undeclared."""
        if not self.supports_stats:
            pytest.skip(
                "supports_stats = False: implement Transport.stats(queue) -> QueueStats(ready, "
                "in_flight, delayed, dead), then set supports_stats = True"
            )
        try:
            return await transport.stats(queue)
        except NotImplementedError:
            pytest.fail(
                f"{type(transport).__name__}.stats() raised NotImplementedError: implement it, "
                "or set supports_stats = False in the conformance subclass"
            )

    # -- fixtures ----------------------------------------------------------------------------

    def new_transport(self) -> Transport:
        """Create a transport with the suite's lease and poison settings applied."""
        transport = self.make_transport()
        transport.visibility_timeout = self.visibility_timeout
        transport.max_deliveries = self.max_deliveries
        return transport

    async def fresh_transport(self) -> Transport:
        """Another connected transport on the same broker ("a new process"); closed after."""
        transport = self.new_transport()
        await transport.connect()
        self._extra_transports.append(transport)
        return transport

    @pytest_asyncio.fixture
    async def transport(self) -> AsyncIterator[Transport]:
        """A connected transport; its test queues are deleted afterwards."""
        transport = self.new_transport()
        await transport.connect()
        self._queues: list[str] = []
        self._extra_transports: list[Transport] = []
        try:
            yield transport
        finally:
            for extra in self._extra_transports:
                with contextlib.suppress(Exception):
                    await extra.disconnect()
            for queue in self._queues:
                for name in (queue, dead_letter_queue(queue)):
                    with contextlib.suppress(Exception):  # best-effort cleanup
                        await transport.delete_queue(name)
            await transport.disconnect()

    # -- helpers -----------------------------------------------------------------------------

    def queue(self) -> str:
        """Return a fresh queue name, deleted (with its dead letters) after the test."""
        name = f"conformance-{uuid.uuid4().hex[:12]}"
        self._queues.append(name)
        return name

    @property
    def redelivery_timeout(self) -> float:
        """Longest wait for a redelivery: the lease plus the grace period."""
        return self.visibility_timeout + self.redelivery_grace

    @property
    def quiet_period(self) -> float:
        """How long to wait to be sure something does not arrive (past one lease)."""
        return self.visibility_timeout * 2 + 0.5

    @staticmethod
    async def publish(transport: Transport, queue: str, n: int = 1, **kwargs: Any) -> list[str]:
        """Publish ``n`` messages ``m-<i>`` and return their ids."""
        ids = []
        for i in range(n):
            message_id = f"m-{i}-{uuid.uuid4().hex[:6]}"
            await transport.publish(queue, f"body-{i}".encode(), message_id=message_id, **kwargs)
            ids.append(message_id)
        return ids

    @staticmethod
    async def get(
        receiver: Receiver, timeout: float = 5.0, *, what: str = "a delivery"
    ) -> Delivery:
        """The next delivery of ``receiver``; fails the test if none comes within ``timeout``."""
        delivery = await receiver.get(timeout)
        if delivery is None:
            pytest.fail(f"{what} did not arrive within {timeout:.1f}s")
        return delivery

    async def expect_stats(
        self, transport: Transport, queue: str, expected: QueueStats, *, after: str
    ) -> None:
        """Wait (briefly) until ``stats(queue)`` equals ``expected``; fail naming ``after``."""
        deadline = time.monotonic() + self.redelivery_grace
        while True:
            got = await self.stats(transport, queue)
            if got == expected:
                return
            if time.monotonic() >= deadline:
                pytest.fail(f"after {after}: stats() is {got}, expected {expected}")
            await asyncio.sleep(0.05)

    @staticmethod
    def assert_logged(caplog: pytest.LogCaptureFixture, message_id: str, what: str) -> None:
        """Assert some log record mentions ``message_id`` (a no-op settle must log)."""
        if not any(message_id in record.getMessage() for record in caplog.records):
            pytest.fail(f"{what} of message {message_id} logged nothing (it must log a line)")
