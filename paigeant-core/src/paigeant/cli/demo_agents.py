"""The three agents of ``paigeant demo``: input, then enrichment, then output.

Each runs on ``PAIGEANT_MODEL`` when set, else on a deterministic offline model that reads only
its prompt and instructions (so the previous step's output visibly travels through the slip).
Workers for them: ``paigeant worker paigeant.cli.demo_agents:input_agent --transport redis``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, Field

from ..agents import PaigeantAgent, WorkflowDependencies, resolve_model, scripted_model
from ..settings import env_float
from ..workflow.messages import RetryPolicy

__all__ = [
    "AGENTS",
    "AGENT_NAMES",
    "DEFAULT_PROMPT",
    "LATENCY",
    "WORKER_TARGETS",
    "Brief",
    "EnrichmentDeps",
    "OutputDeps",
    "Request",
    "enrichment_agent",
    "input_agent",
    "output_agent",
]

DEFAULT_PROMPT = "Explain durable workflows for AI agents to a new engineer"

#: Simulated latency of the offline models, in seconds (``PAIGEANT_DEMO_LATENCY``).
LATENCY = env_float("PAIGEANT_DEMO_LATENCY", 0.4)

_RETRY = RetryPolicy(max_attempts=3, initial_delay=0.5)


class Request(BaseModel):
    """What the user asked for: a topic and who it is for."""

    topic: str
    audience: str = "a curious reader"


class Brief(BaseModel):
    """A request enriched with the facts the answer should use."""

    topic: str
    audience: str
    facts: list[str] = Field(default_factory=list)


class EnrichmentDeps(WorkflowDependencies):
    """Deps of the enrichment agent: the previous output is rebuilt as a Request."""

    previous_output: Request | None = None


class OutputDeps(WorkflowDependencies):
    """Deps of the output agent: the previous output is rebuilt as a Brief."""

    previous_output: Brief | None = None


_FACTS: dict[str, list[str]] = {
    "workflow": [
        "A workflow is an ordered itinerary of steps that travels inside every message.",
        "Each worker runs the step at the head of the slip, records it and forwards it.",
    ],
    "durable": [
        "A step is acknowledged only after the next hop is published, so nothing is lost.",
        "A crashed worker's step is redelivered and retried with backoff.",
    ],
    "agent": [
        "Each agent is a pydantic-ai Agent that is also an activity with its own queue.",
        "An agent sees the previous step's output in its instructions.",
    ],
}

_GENERIC = [
    "paigeant chains steps as a routing slip: no central orchestrator.",
    "Workers scale by competing on each activity's queue.",
]


def _previous(instructions: str) -> dict[str, Any]:
    """The previous step's JSON output, as found in the model's instructions."""
    match = re.search(r"produced this output:\n(\{.*?\n\})", instructions, re.DOTALL)
    if match is None:
        return {}
    try:
        value = json.loads(match.group(1))
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _parse_request(prompt: str, instructions: str) -> dict[str, Any]:
    text = prompt.strip().rstrip(".?!")
    match = re.match(r"(?i)(?:explain|describe|tell me about)\s+(.+?)(?:\s+to\s+(.+))?$", text)
    if match is None:
        return {"topic": text or "paigeant"}
    return {"topic": match.group(1), "audience": match.group(2) or "a curious reader"}


def _enrich(prompt: str, instructions: str) -> dict[str, Any]:
    request = _previous(instructions)
    topic = str(request.get("topic", "paigeant"))
    facts = [fact for key, found in _FACTS.items() if key in topic.lower() for fact in found]
    return {
        "topic": topic,
        "audience": request.get("audience", "a curious reader"),
        "facts": (facts or _GENERIC)[:3],
    }


def _write(prompt: str, instructions: str) -> str:
    brief = _previous(instructions)
    facts = "\n".join(f"  - {fact}" for fact in brief.get("facts", []))
    topic = str(brief.get("topic", "paigeant"))
    return (
        f"{topic[:1].upper()}{topic[1:]}, for {brief.get('audience')}:\n"
        f"{facts}\n"
        "In short: three agents each did one step and handed the slip on."
    )


input_agent: PaigeantAgent[WorkflowDependencies, Request] = PaigeantAgent(
    resolve_model(offline=scripted_model(_parse_request, name="offline-input", latency=LATENCY)),
    name="input-agent",
    output_type=Request,
    system_prompt="Extract the topic of the user's request and the audience it is for.",
    retry=_RETRY,
)

enrichment_agent: PaigeantAgent[EnrichmentDeps, Brief] = PaigeantAgent(
    resolve_model(offline=scripted_model(_enrich, name="offline-enrichment", latency=LATENCY)),
    name="enrichment-agent",
    deps_type=EnrichmentDeps,
    output_type=Brief,
    system_prompt="Add three short, accurate facts the answer should use about the topic.",
    retry=_RETRY,
)

output_agent: PaigeantAgent[OutputDeps, str] = PaigeantAgent(
    resolve_model(offline=scripted_model(_write, name="offline-output", latency=LATENCY)),
    name="output-agent",
    deps_type=OutputDeps,
    system_prompt="Write a short answer for the audience, using the facts given.",
    retry=_RETRY,
)

#: The demo's agents, in workflow order, and their names.
AGENTS: tuple[PaigeantAgent[Any, Any], ...] = (input_agent, enrichment_agent, output_agent)
AGENT_NAMES: tuple[str, ...] = tuple(agent.activity_name for agent in AGENTS)
#: ``paigeant worker`` target of each agent, by name.
WORKER_TARGETS: dict[str, str] = {
    input_agent.activity_name: f"{__name__}:input_agent",
    enrichment_agent.activity_name: f"{__name__}:enrichment_agent",
    output_agent.activity_name: f"{__name__}:output_agent",
}
