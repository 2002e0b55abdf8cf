"""Onboarding workflow, end to end in one process: a run that completes, then one that faults.

    uv run python guides/onboarding_example.py

The second run makes ``send-notification`` fail for good: paigeant retries it, faults the
workflow and compensates ``create-account`` (deleting the account it created).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from paigeant import (
    ActivityContext,
    ActivitySpec,
    RetryPolicy,
    Worker,
    WorkflowDispatcher,
    WorkflowResult,
    activity,
    get_transport,
)

ACCOUNTS: dict[str, str] = {}  # stands in for a user database


@activity("validate-input", description="Customer onboarding, step 1: check the sign-up form.")
async def validate_input(ctx: ActivityContext) -> dict[str, Any]:
    """Check the sign-up form (its e-mail comes as an argument, or as a workflow variable)."""
    email = ctx.arguments.get("email") or ctx.variables["email"]
    if "@" not in email:
        raise ValueError(f"not an email address: {email!r}")
    return {"email": email.lower()}


@activity(
    "create-account",
    retry=RetryPolicy(max_attempts=3, initial_delay=0.1),
    description="Customer onboarding, step 2: create the account.",
)
async def create_account(ctx: ActivityContext) -> dict[str, Any]:
    """Create the account (idempotently: a redelivered step finds it already there)."""
    email = ctx.previous_output["email"]
    account_id = ACCOUNTS.setdefault(email, f"acct-{len(ACCOUNTS) + 1}")
    ctx.variables["account_id"] = account_id
    return {"account_id": account_id, "email": email}


@create_account.compensate
async def delete_account(ctx: ActivityContext) -> None:
    """Undo create-account: ctx.output is what create_account returned."""
    ACCOUNTS.pop(ctx.output["email"], None)
    print(f"  compensated create-account: deleted {ctx.output['account_id']}")


@activity(
    "send-notification",
    retry=RetryPolicy(max_attempts=2, initial_delay=0.1),
    description="Customer onboarding, step 3: send the welcome e-mail.",
)
async def send_notification(ctx: ActivityContext) -> dict[str, Any]:
    """Send the welcome e-mail (fails when the workflow asks it to)."""
    if ctx.variables.get("smtp_down"):
        raise ConnectionError("SMTP server unreachable")
    return {"sent_to": ctx.outputs["create-account"]["email"]}


def show(result: WorkflowResult) -> None:
    """Print which steps ran, which were compensated, and why the workflow ended."""
    print(f"  status:      {result.status}")
    print(
        f"  ran:         {', '.join(f'{e.name} (attempt {e.attempt})' for e in result.activity_log)}"
    )
    if result.compensated:
        print(f"  compensated: {', '.join(result.compensated)}")
    if result.error:
        print(
            f"  why:         {result.fault.activity if result.fault else '?'} failed: {result.error}"
        )
    print(f"  variables:   {result.variables}")


async def main() -> None:
    """Run the happy path and the failure path on the default (in-memory) transport."""
    transport = get_transport()
    async with transport:
        worker = Worker(transport, [validate_input, create_account, send_notification])
        worker_task = asyncio.create_task(worker.run())
        dispatcher = WorkflowDispatcher(transport)
        steps = [
            ActivitySpec(name="validate-input", arguments={"email": "Ada@Example.com"}),
            ActivitySpec(name="create-account"),
            ActivitySpec(name="send-notification"),
        ]

        correlation_id = await dispatcher.dispatch_workflow(steps)
        print(f"Workflow dispatched: {correlation_id}")
        show(await dispatcher.wait_for(correlation_id, timeout=30))

        steps[0] = ActivitySpec(name="validate-input", arguments={"email": "grace@example.com"})
        correlation_id = await dispatcher.dispatch_workflow(steps, variables={"smtp_down": True})
        print(f"Workflow dispatched: {correlation_id}")
        show(await dispatcher.wait_for(correlation_id, timeout=30))
        print(f"Accounts left: {sorted(ACCOUNTS)}")

        worker.stop()
        await worker_task
        await dispatcher.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="  log: %(message)s")
    asyncio.run(main())
