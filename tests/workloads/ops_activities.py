"""Activities for the operations test: a step that always fails, and one that kills its worker.

``ops-crash`` SIGKILLs its own worker process on every attempt unless PAIGEANT_TEST_FIXED=1 (the
"fixed" deployment). ``MAIN`` and ``CRASHY`` are the two workers' activity lists.
"""

from __future__ import annotations

import os
import signal

from paigeant import ActivityContext, RetryPolicy, activity


@activity("ops-reserve")
async def reserve(ctx: ActivityContext) -> dict[str, str]:
    return {"seat": "12A"}


@reserve.compensate
async def release(ctx: ActivityContext) -> None:
    return None


@activity("ops-charge", retry=RetryPolicy(max_attempts=2, initial_delay=0.05, jitter=0))
async def charge(ctx: ActivityContext) -> None:
    raise RuntimeError("card declined")


@activity("ops-crash")
async def crash(ctx: ActivityContext) -> str:
    if os.environ.get("PAIGEANT_TEST_FIXED") != "1":
        os.kill(os.getpid(), signal.SIGKILL)
    return f"fixed on attempt {ctx.attempt}"


@activity("ops-finish")
async def finish(ctx: ActivityContext) -> str:
    return "finished"


MAIN = [reserve, charge, finish]
CRASHY = [crash]
