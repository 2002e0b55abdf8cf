"""Run a worker for one agent, found by name in a module (the seed's command line).

    uv run python guides/execution_example.py joke-generator guides.dispatcher_example

The agent is looked up by its name, then by attribute name. Use a transport that crosses
processes (``PAIGEANT_TRANSPORT=redis`` plus ``PAIGEANT_SIGNING_KEY``) so that a dispatcher in
another process reaches it. Stop it with Ctrl-C or SIGTERM: in-flight steps finish first.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

# Make `guides.<module>` importable when this file is run as a script from anywhere.
for path in (str(Path(__file__).resolve().parent.parent), os.getcwd()):
    if path not in sys.path:
        sys.path.insert(0, path)

from paigeant import ActivityExecutor, PaigeantError, get_transport  # noqa: E402


async def serve(agent_name: str, agent_path: str) -> None:
    """Serve ``agent_name`` from ``agent_path`` until stopped."""
    transport = get_transport()
    executor = ActivityExecutor(transport, agent_name=agent_name, agent_path=agent_path)
    executor.load()  # fail now, with the agents found, if the name is wrong

    async def announce() -> None:
        await executor.ready.wait()
        print(f"Worker for {agent_name} ready on {type(transport).__name__}", flush=True)

    async with transport:
        announcer = asyncio.ensure_future(announce())
        try:
            await executor.start()
        finally:
            announcer.cancel()


def main() -> int:
    """Parse ``AGENT_NAME AGENT_PATH`` and run the worker."""
    parser = argparse.ArgumentParser(description="Run a paigeant worker for one agent.")
    parser.add_argument("agent_name", help="agent name, e.g. joke-generator")
    parser.add_argument("agent_path", help="module defining it, e.g. guides.dispatcher_example")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args()
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(serve(args.agent_name, args.agent_path))
    except PaigeantError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
