"""ActivityExecutor: a worker for one agent, found by name in a module (seed-compatible API)."""

from __future__ import annotations

import asyncio
import importlib
import logging
from typing import Any

from ..errors import PaigeantError
from ..runtime.activity import Activity, SupportsActivity, as_activity
from ..runtime.worker import Worker
from ..transports.base import Transport

__all__ = ["ActivityExecutor", "AgentNotFoundError", "find_agent", "module_activities"]

logger = logging.getLogger(__name__)

Runnable = Activity | SupportsActivity


class AgentNotFoundError(PaigeantError, LookupError):
    """No agent (or activity) with the requested name was found in the given module."""


def _import(module_path: str) -> Any:
    try:
        return importlib.import_module(module_path)
    except ModuleNotFoundError as exc:
        raise AgentNotFoundError(
            f"cannot import {module_path!r} ({exc}); run from the directory that contains it "
            "or add that directory to PYTHONPATH"
        ) from exc


def module_activities(module: Any) -> dict[str, tuple[str, Runnable]]:
    """Every activity or agent defined in ``module``, by activity name: ``(attribute, object)``."""
    found: dict[str, tuple[str, Runnable]] = {}
    for attribute, value in vars(module).items():
        if attribute.startswith("_") or isinstance(value, type):
            continue
        if not isinstance(value, Activity | SupportsActivity):
            continue
        try:
            name = as_activity(value).name
        except Exception:  # an object that only looks like an activity provider
            logger.debug("skipping %s.%s: not an activity", module.__name__, attribute)
            continue
        found.setdefault(name, (attribute, value))
    return found


def find_agent(agent_name: str, agent_path: str) -> Runnable:
    """Find ``agent_name`` in module ``agent_path``: by its activity name, then by attribute name."""
    module = _import(agent_path)
    found = module_activities(module)
    if agent_name in found:
        return found[agent_name][1]
    for attribute in (agent_name, agent_name.replace("-", "_")):
        value = getattr(module, attribute, None)
        if value is not None and isinstance(value, Activity | SupportsActivity):
            return value
    listing = ", ".join(f"{name} (attribute {attr})" for name, (attr, _) in sorted(found.items()))
    raise AgentNotFoundError(
        f"no agent named {agent_name!r} in {agent_path!r}; found: {listing or 'no agents'}"
    )


class ActivityExecutor:
    """Runs a worker for one agent (or activity) found by name in a module."""

    def __init__(
        self,
        transport: Transport,
        agent_name: str,
        agent_path: str,
        *,
        concurrency: int = 10,
        **worker_options: Any,
    ) -> None:
        """Serve ``agent_name`` from module ``agent_path`` on ``transport`` once started."""
        self.transport = transport
        self.agent_name = agent_name
        self.agent_path = agent_path
        self.concurrency = concurrency
        self.worker_options = worker_options
        self.agent: Runnable | None = None
        self.worker: Worker | None = None
        #: Set while the worker is consuming its queues.
        self.ready = asyncio.Event()

    def load(self) -> Runnable:
        """Find (once) and return the agent this executor serves."""
        if self.agent is None:
            self.agent = find_agent(self.agent_name, self.agent_path)
        return self.agent

    async def start(self) -> None:
        """Run the worker until it is stopped, cancelled or receives SIGTERM."""
        agent = self.load()
        worker = self.worker = Worker(
            self.transport, [agent], concurrency=self.concurrency, **self.worker_options
        )
        if not self.transport.crosses_processes:
            logger.warning(
                "%s does not cross processes: this worker only runs workflows dispatched in "
                "this process (set PAIGEANT_TRANSPORT, e.g. redis)",
                type(self.transport).__name__,
            )

        async def announce() -> None:
            await worker.ready.wait()
            self.ready.set()

        watcher = asyncio.ensure_future(announce())
        try:
            await worker.run()
        finally:
            watcher.cancel()
            self.ready.clear()

    def stop(self) -> None:
        """Ask the worker to stop and drain its in-flight steps."""
        if self.worker is not None:
            self.worker.stop()
