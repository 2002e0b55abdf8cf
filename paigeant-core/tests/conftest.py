"""Shared fixtures: a connected in-memory transport and workers running in the background."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio

from paigeant import Worker
from paigeant.transports.inmemory import InMemoryTransport


@pytest_asyncio.fixture
async def transport() -> AsyncIterator[InMemoryTransport]:
    """A connected in-memory transport with a short lease."""
    async with InMemoryTransport(visibility_timeout=1.0) as connected:
        yield connected  # type: ignore[misc]


@pytest_asyncio.fixture
async def start_worker() -> AsyncIterator[Callable[[Worker], asyncio.Task[None]]]:
    """Start workers in the background; they are stopped and drained after the test."""
    running: list[tuple[Worker, asyncio.Task[None]]] = []

    def start(worker: Worker) -> asyncio.Task[None]:
        task = asyncio.ensure_future(worker.run())
        running.append((worker, task))
        return task

    yield start
    for worker, _ in running:
        worker.stop()
    for _, task in running:
        try:
            await asyncio.wait_for(task, 10)
        except (asyncio.CancelledError, TimeoutError):
            task.cancel()


@pytest.fixture(autouse=True)
def _no_env_leaks(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Run every test without the caller's PAIGEANT_* settings (transport, signer, keys, OBO).

    ``PAIGEANT_HOME`` points at a fresh directory, so no test writes to the real home.
    """
    for var in [name for name in os.environ if name.startswith("PAIGEANT_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("PAIGEANT_HOME", str(tmp_path_factory.mktemp("paigeant-home")))
