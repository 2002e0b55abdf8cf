"""The planner agent builds and dispatches a workflow from a request, offline by default.

    uv run python guides/planner_example.py

The planner sees the onboarding activities of ``onboarding_example.py`` (validate-input,
create-account, send-notification) with their descriptions. With ``PAIGEANT_MODEL`` unset it
runs on paigeant's offline planner, which dispatches the activities the request mentions by
name or description, in the order their descriptions give ("step 1", "step 2", ...). Set
``PAIGEANT_MODEL`` to let a real model plan instead; the code is the same.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

# Make `guides.<module>` importable when this file is run as a script from anywhere.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from guides.onboarding_example import (
    create_account,
    send_notification,
    validate_input,
)
from paigeant import (
    PlannerAgentDeps,
    Worker,
    WorkflowDispatcher,
    create_planner_agent,
    get_transport,
)

ACTIVITIES = [validate_input, create_account, send_notification]


async def main() -> None:
    """Let the planner dispatch an onboarding workflow, run workers for it, print the result."""
    transport = get_transport()
    async with transport:
        worker = Worker(transport, ACTIVITIES)
        worker_task = asyncio.create_task(worker.run())
        dispatcher = WorkflowDispatcher(transport)

        agent = create_planner_agent()
        deps = PlannerAgentDeps(
            workflow_dispatcher=dispatcher,
            activities=ACTIVITIES,
            variables={"email": "Ada@Example.com"},
        )
        result = await agent.run("Create a customer onboarding workflow", deps=deps)
        print(f"Planner: {result.output}")
        if not deps.dispatched:
            raise SystemExit("the planner dispatched nothing")

        correlation_id = deps.dispatched[0]
        print(f"Workflow dispatched: {correlation_id}")
        outcome = await dispatcher.wait_for(correlation_id, timeout=30)
        print(f"Steps: {' -> '.join(entry.name for entry in outcome.activity_log)}")
        print(f"Status: {outcome.status}")
        print(f"Result: {outcome.output}")
        print(f"Correlation id: {correlation_id}")

        worker.stop()
        await worker_task
        await dispatcher.close()


if __name__ == "__main__":
    asyncio.run(main())
