"""A two-agent joke workflow: PaigeantAgents, cross-agent deps, dispatched with WorkflowDispatcher.

Run it (offline, in one process, on the in-memory transport):

    uv run python guides/dispatcher_example.py

With a broker, start a worker per agent first, then dispatch from here:

    PAIGEANT_TRANSPORT=redis PAIGEANT_SIGNING_KEY=... \\
        uv run python guides/execution_example.py joke-generator guides.dispatcher_example
    (same for joke-rater), then PAIGEANT_TRANSPORT=redis ... python guides/dispatcher_example.py

``PAIGEANT_MODEL`` (e.g. ``openai:gpt-4o``) runs the agents on a real model.
"""

from __future__ import annotations

import asyncio
import re

from pydantic import BaseModel
from pydantic_ai import RunContext

from paigeant import ActivitySpec, Worker, WorkflowDispatcher, get_transport
from paigeant.agents import PaigeantAgent, WorkflowDependencies, resolve_model, scripted_model


class Joke(BaseModel):
    """A joke: its setup and its punchline."""

    setup: str
    punchline: str


class Rating(BaseModel):
    """A verdict on a joke."""

    score: int
    verdict: str


class JokeDeps(WorkflowDependencies):
    """Given at dispatch and rebuilt in each agent's worker: the topic and the audience."""

    topic: str
    audience: str = "developers"


class RatingDeps(JokeDeps):
    """The rater's deps: same inputs, and the previous output rebuilt as a Joke."""

    previous_output: Joke | None = None


# Offline stand-ins for a real model: deterministic, reading only prompt and instructions.
def _write_joke(prompt: str, instructions: str) -> dict[str, str]:
    topic = re.search(r"Topic: (.+)", instructions)
    subject = topic.group(1) if topic else "software"
    return {
        "setup": f"Why did the {subject} refuse to work alone?",
        "punchline": "It preferred to pass the slip to the next agent.",
    }


def _rate_joke(prompt: str, instructions: str) -> dict[str, object]:
    has_joke = "punchline" in instructions
    return {"score": 7 if has_joke else 0, "verdict": "groan-worthy, in a good way"}


joke_generator: PaigeantAgent[JokeDeps, Joke] = PaigeantAgent(
    resolve_model(offline=scripted_model(_write_joke)),
    name="joke-generator",
    deps_type=JokeDeps,
    output_type=Joke,
    system_prompt="You write one short, clean joke.",
)


@joke_generator.instructions
def joke_brief(ctx: RunContext[JokeDeps]) -> str:
    """Tell the model the topic and audience given at dispatch."""
    return f"Topic: {ctx.deps.topic}\nAudience: {ctx.deps.audience}"


joke_rater: PaigeantAgent[RatingDeps, Rating] = PaigeantAgent(
    resolve_model(offline=scripted_model(_rate_joke)),
    name="joke-rater",
    deps_type=RatingDeps,
    output_type=Rating,
    system_prompt="You rate the joke you are given from 0 to 10, with a one-line verdict.",
)


@joke_rater.instructions
def rating_brief(ctx: RunContext[RatingDeps]) -> str:
    """Tell the model who the joke is for."""
    return f"Rate it for an audience of {ctx.deps.audience}."


async def main() -> None:
    """Dispatch the joke workflow and print its result."""
    transport = get_transport()
    async with transport:
        tasks = []
        if not transport.crosses_processes:  # one process: run the workers here
            tasks.append(
                asyncio.ensure_future(Worker(transport, [joke_generator, joke_rater]).run())
            )
        dispatcher = WorkflowDispatcher(transport)
        deps = JokeDeps(topic="routing slip", audience="developers")
        correlation_id = await dispatcher.dispatch_workflow(
            [
                ActivitySpec(name="joke-generator", prompt="Tell me a joke.", deps=deps),
                ActivitySpec(name="joke-rater", deps=RatingDeps(**deps.model_dump())),
            ],
            variables={"requested_by": "dispatcher_example"},
        )
        print(f"Workflow dispatched: {correlation_id}")
        result = await dispatcher.wait_for(correlation_id, timeout=120)
        await dispatcher.close()
        for task in tasks:
            task.cancel()
    print(f"Status: {result.status}")
    if result.status != "completed":
        raise SystemExit(f"Workflow {result.status}: {result.error}")
    joke = Joke.model_validate(result.outputs["joke-generator"])
    rating = Rating.model_validate(result.outputs["joke-rater"])
    print(f"Joke: {joke.setup} {joke.punchline}")
    print(f"Rating: {rating.score}/10 ({rating.verdict})")
    print(f"Correlation id: {correlation_id}")


if __name__ == "__main__":
    asyncio.run(main())
