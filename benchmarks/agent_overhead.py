"""Per-step overhead paigeant adds around an agent run, and the import time of ``paigeant``.

    uv run python benchmarks/agent_overhead.py --runs 200

Runs a PaigeantAgent on pydantic-ai's TestModel ``runs`` times directly (``agent.run``) and
``runs`` times as one-step workflows through a Worker on the in-memory transport, one at a
time, and reports the mean per step of each and their difference. Also times, in fresh
interpreters, ``import paigeant`` (which must not import pydantic-ai) and ``import pydantic_ai``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from typing import Any

from _common import report


def _import_seconds(statement: str, repeat: int = 5) -> float:
    """Median wall time of ``statement`` in a fresh interpreter, minus bare start-up."""

    def once(code: str) -> float:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        return time.perf_counter() - started

    bare = statistics.median(once("pass") for _ in range(repeat))
    return statistics.median(once(statement) for _ in range(repeat)) - bare


async def _measure(runs: int) -> dict[str, float]:
    from paigeant import ActivitySpec, PaigeantAgent, Worker, WorkflowDispatcher
    from paigeant.transports.inmemory import InMemoryTransport

    agent: Any = PaigeantAgent("test", name="bench-agent")
    await agent.run("warm up")
    started = time.perf_counter()
    for _ in range(runs):
        await agent.run("tell me a joke")
    direct = (time.perf_counter() - started) / runs

    async with InMemoryTransport() as transport:
        worker = Worker(transport, [agent], handle_signals=False)
        task = asyncio.ensure_future(worker.run())
        dispatcher = WorkflowDispatcher(transport)
        spec = ActivitySpec(name="bench-agent", prompt="tell me a joke")
        await dispatcher.wait_for(await dispatcher.dispatch_workflow([spec]), timeout=30)
        started = time.perf_counter()
        for _ in range(runs):
            result = await dispatcher.wait_for(
                await dispatcher.dispatch_workflow([spec]), timeout=30
            )
            assert result.status == "completed", result.error
        through = (time.perf_counter() - started) / runs
        worker.stop()
        await task
        await dispatcher.close()
    return {"direct": direct, "through": through}


def main() -> None:
    """Measure and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    timing = asyncio.run(_measure(args.runs))
    import_paigeant = _import_seconds(
        "import sys, paigeant; assert 'pydantic_ai' not in sys.modules"
    )
    import_pydantic_ai = _import_seconds("import pydantic_ai")
    result = {
        "runs": args.runs,
        "agent_run_direct_ms": round(timing["direct"] * 1000, 3),
        "agent_step_through_paigeant_ms": round(timing["through"] * 1000, 3),
        "overhead_per_step_ms": round((timing["through"] - timing["direct"]) * 1000, 3),
        "import_paigeant_s": round(import_paigeant, 3),
        "import_pydantic_ai_s": round(import_pydantic_ai, 3),
    }
    report(
        result,
        f"agent.run {result['agent_run_direct_ms']} ms; as a workflow step "
        f"{result['agent_step_through_paigeant_ms']} ms (+{result['overhead_per_step_ms']} ms "
        f"dispatch, sign, route, verify, events, result); import paigeant "
        f"{result['import_paigeant_s']} s (pydantic-ai not loaded; it alone takes "
        f"{result['import_pydantic_ai_s']} s)",
    )


if __name__ == "__main__":
    main()
