"""``python -m paigeant.agents AGENT MODULE``: run a worker for one agent (used by the demo)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys

from ..errors import PaigeantError
from ..plugins import get_transport
from .executor import ActivityExecutor

__all__ = ["main"]

#: Line printed on stdout once the worker consumes its queue; parents wait for it.
READY_PREFIX = "paigeant-worker-ready"


async def _serve(agent: str, module: str, transport_name: str | None, concurrency: int) -> None:
    transport = get_transport(transport_name)
    executor = ActivityExecutor(transport, agent, module, concurrency=concurrency)
    executor.load()
    async with transport:
        task = asyncio.ensure_future(executor.start())
        ready = asyncio.ensure_future(executor.ready.wait())
        await asyncio.wait([task, ready], return_when=asyncio.FIRST_COMPLETED)
        if ready.done():
            print(f"{READY_PREFIX} {agent}", flush=True)
        else:
            ready.cancel()
        await task


def main(argv: list[str] | None = None) -> int:
    """Parse ``AGENT MODULE [--transport NAME] [--concurrency N]`` and serve until SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m paigeant.agents", description="Run a paigeant worker for one agent."
    )
    parser.add_argument("agent", help="agent (activity) name, or its attribute name")
    parser.add_argument("module", help="importable module defining the agent")
    parser.add_argument("--transport", default=None, help="transport name (PAIGEANT_TRANSPORT)")
    parser.add_argument("--concurrency", type=int, default=10)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(_serve(args.agent, args.module, args.transport, args.concurrency))
    except PaigeantError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
