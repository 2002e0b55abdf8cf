"""Activities for the crash test: each step appends (correlation_id, step, attempt) to a ledger."""

from __future__ import annotations

import asyncio
import os

from paigeant import ActivityContext, activity

LEDGER = os.environ.get("PAIGEANT_TEST_LEDGER", "ledger.csv")


def _record(ctx: ActivityContext, step: int) -> None:
    with open(LEDGER, "a", encoding="utf-8") as ledger:  # O_APPEND: one short line per write
        ledger.write(f"{ctx.correlation_id},{step},{ctx.attempt}\n")


def _step(index: int) -> object:
    @activity(f"crash-step-{index}")
    async def run(ctx: ActivityContext) -> int:
        await asyncio.sleep(0.05)  # long enough for the kill to land mid-step
        _record(ctx, index)
        return index

    return run


crash_step_0, crash_step_1, crash_step_2, crash_step_3 = (_step(i) for i in range(4))
