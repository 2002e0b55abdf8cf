"""Three agents in turn: input (parse a ticket), enrichment (add context), output (write a reply).

In one process on the in-memory transport (offline, no key):

    uv run python guides/three_agent_workflow_example.py

With a broker, each agent runs in its own worker process, started and stopped by this script;
each step is forwarded to the next agent's queue by the worker that ran it:

    PAIGEANT_TRANSPORT=redis PAIGEANT_SIGNING_KEY=change-me \\
        uv run python guides/three_agent_workflow_example.py

``PAIGEANT_MODEL`` (e.g. ``openai:gpt-4o``) runs the agents on a real model.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from pydantic_ai import RunContext

from paigeant import ActivitySpec, Transport, Worker, WorkflowDispatcher, get_transport
from paigeant.agents import PaigeantAgent, WorkflowDependencies, resolve_model, scripted_model

ROOT = Path(__file__).resolve().parent.parent
AGENTS = ("ticket-intake", "ticket-enrichment", "reply-writer")


class Ticket(BaseModel):
    """A support request, as the input agent understood it."""

    customer: str
    product: str
    issue: str


class EnrichedTicket(Ticket):
    """The ticket plus what the support knowledge base says about it."""

    articles: list[str] = Field(default_factory=list)


class EnrichmentDeps(WorkflowDependencies):
    """The enrichment agent's deps: a knowledge base given at dispatch, and the Ticket."""

    knowledge_base: dict[str, str] = Field(default_factory=dict)
    previous_output: Ticket | None = None


class ReplyDeps(WorkflowDependencies):
    """The output agent's deps: the previous output rebuilt as an EnrichedTicket."""

    previous_output: EnrichedTicket | None = None


# Offline stand-ins for a real model: deterministic, reading only prompt and instructions.
def _previous_field(instructions: str, name: str) -> str:
    match = re.search(rf'"{name}": "([^"]*)"', instructions)
    return match.group(1) if match else ""


def _intake(prompt: str, instructions: str) -> dict[str, str]:
    customer = re.search(r"(?i)i am (\w+)", prompt)
    product = re.search(r"(?i)my (\w+)", prompt)
    return {
        "customer": customer.group(1) if customer else "customer",
        "product": product.group(1) if product else "product",
        "issue": prompt.strip(),
    }


def _enrich(prompt: str, instructions: str) -> dict[str, Any]:
    articles = re.findall(r"^- (.+)$", instructions, re.MULTILINE)
    return {
        "customer": _previous_field(instructions, "customer"),
        "product": _previous_field(instructions, "product"),
        "issue": _previous_field(instructions, "issue"),
        "articles": articles,
    }


def _reply(prompt: str, instructions: str) -> str:
    articles = re.findall(r'^\s+"([^"]+)",?$', instructions, re.MULTILINE)
    product = _previous_field(instructions, "product")
    steps = "; ".join(articles) or "our team will contact you"
    return f"Hi {_previous_field(instructions, 'customer')}, sorry about your {product}. {steps}."


intake_agent = PaigeantAgent(
    resolve_model(offline=scripted_model(_intake)),
    name="ticket-intake",
    output_type=Ticket,
    system_prompt="Extract the customer's name, the product and the issue from the message.",
)

enrichment_agent: PaigeantAgent[EnrichmentDeps, EnrichedTicket] = PaigeantAgent(
    resolve_model(offline=scripted_model(_enrich)),
    name="ticket-enrichment",
    deps_type=EnrichmentDeps,
    output_type=EnrichedTicket,
    system_prompt="Copy the ticket and add the knowledge-base articles that apply to it.",
)


@enrichment_agent.instructions
def relevant_articles(ctx: RunContext[EnrichmentDeps]) -> str:
    """List the knowledge-base articles about the ticket's product."""
    ticket = ctx.deps.previous_output
    product = ticket.product.lower() if ticket else ""
    found = [text for key, text in ctx.deps.knowledge_base.items() if key in product]
    return "Knowledge-base articles:\n" + "\n".join(f"- {text}" for text in found)


reply_agent: PaigeantAgent[ReplyDeps, str] = PaigeantAgent(
    resolve_model(offline=scripted_model(_reply)),
    name="reply-writer",
    deps_type=ReplyDeps,
    system_prompt="Write a short, friendly reply to the customer using the articles given.",
)

KNOWLEDGE_BASE = {
    "router": "Restart the router and wait two minutes",
    "printer": "Reinstall the printer driver",
}


@contextlib.asynccontextmanager
async def worker_processes() -> AsyncIterator[None]:
    """Start one worker process per agent (guides/execution_example.py), stop them after."""
    processes = []
    try:
        for name in AGENTS:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                str(ROOT / "guides" / "execution_example.py"),
                name,
                "guides.three_agent_workflow_example",
                "--log-level",
                "WARNING",
                cwd=ROOT,
                stdout=asyncio.subprocess.PIPE,
            )
            processes.append(process)
        for name, process in zip(AGENTS, processes, strict=True):
            assert process.stdout is not None
            line = await asyncio.wait_for(process.stdout.readline(), timeout=60)
            if b"ready" not in line:
                raise SystemExit(f"the worker for {name} did not start")
            print(f"  worker process {process.pid}: {line.decode().strip()}")
        yield
    finally:
        for process in processes:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            await process.wait()


async def run_workflow(transport: Transport, message: str) -> None:
    """Dispatch the three-agent workflow for ``message`` and print its result."""
    dispatcher = WorkflowDispatcher(transport)
    correlation_id = await dispatcher.dispatch_workflow(
        [
            ActivitySpec(name="ticket-intake", prompt=message),
            ActivitySpec(
                name="ticket-enrichment",
                deps=EnrichmentDeps(knowledge_base=KNOWLEDGE_BASE),
            ),
            ActivitySpec(name="reply-writer"),
        ]
    )
    print(f"Workflow dispatched: {correlation_id}")
    result = await dispatcher.wait_for(correlation_id, timeout=120)
    await dispatcher.close()
    print(f"Status: {result.status}")
    for entry in result.activity_log:
        print(f"  {entry.name} ran on {entry.worker}")
    if result.status != "completed":
        raise SystemExit(f"Workflow {result.status}: {result.error}")
    print(f"Reply: {result.output}")
    print(f"Correlation id: {correlation_id}")


async def main() -> None:
    """Run the workers (here, or as processes) and the workflow."""
    message = "Hello, I am Ada and my router drops the connection every hour."
    transport = get_transport()
    async with transport:
        if transport.crosses_processes:
            print(f"Starting a worker process per agent on {type(transport).__name__}:")
            async with worker_processes():
                await run_workflow(transport, message)
        else:
            worker = Worker(transport, [intake_agent, enrichment_agent, reply_agent])
            task = asyncio.ensure_future(worker.run())
            await run_workflow(transport, message)
            task.cancel()


if __name__ == "__main__":
    asyncio.run(main())
