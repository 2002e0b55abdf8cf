"""The planner's offline model: plans from the request and the activity catalog, deterministically.

With no ``PAIGEANT_MODEL`` the planner runs on this model, so ``create_planner_agent()`` works
as a user first tries it: no key, no network. It does what a model would do with the planner's
two tools, by rule instead of by inference:

1. it calls ``list_activities``;
2. it chooses every activity whose name the request mentions (``create-account`` as
   "create-account" or "create account"), or whose description shares a significant word with
   the request ("onboarding", "invoice"; not "create", "workflow" or short words);
3. it orders them by the step number a description gives ("step 2"), then by where the
   request names them, then in catalog order;
4. it calls ``dispatch_workflow`` with those steps (each gets the request as its prompt) and
   answers with the correlation id, or says plainly why nothing was dispatched.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel

__all__ = ["OFFLINE_PLANNER_NAME", "choose_steps", "offline_planner_model"]

#: Model name the offline planner reports (``agent.model.model_name``).
OFFLINE_PLANNER_NAME = "paigeant-offline-planner"

_WORD = re.compile(r"[a-z0-9]+")
_STEP_NUMBER = re.compile(r"\bstep\s+(\d+)\b", re.IGNORECASE)
#: Words too common in requests to choose an activity by (besides words under four letters).
_COMMON = frozenset(
    [
        "about",
        "after",
        "also",
        "before",
        "build",
        "could",
        "create",
        "does",
        "from",
        "have",
        "into",
        "make",
        "need",
        "needs",
        "please",
        "plan",
        "should",
        "some",
        "start",
        "steps",
        "that",
        "then",
        "this",
        "using",
        "want",
        "when",
        "which",
        "with",
        "workflow",
        "workflows",
        "would",
        "your",
    ]
)


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _mention(request_words: list[str], name: str) -> int | None:
    """Index of the first word where the request names activity ``name``, if it does."""
    target = _words(name)
    for index in range(len(request_words) - len(target) + 1):
        if request_words[index : index + len(target)] == target:
            return index
    return None


def choose_steps(request: str, activities: Sequence[Mapping[str, str]]) -> list[str]:
    """Names of the activities ``request`` asks for, in order (see the module docstring)."""
    request_words = _words(request)
    mentions = {item["name"]: _mention(request_words, item["name"]) for item in activities}
    named: set[int] = set()  # words that name an activity do not also choose others by description
    for name, position in mentions.items():
        if position is not None:
            named.update(range(position, position + len(_words(name))))
    keywords = {
        word
        for index, word in enumerate(request_words)
        if index not in named and len(word) >= 4 and word not in _COMMON
    }
    chosen: list[tuple[float, float, int, str]] = []
    for index, item in enumerate(activities):
        name, description = item["name"], item.get("description", "")
        position = mentions[name]
        if position is None and not keywords & set(_words(description)):
            continue
        step = _STEP_NUMBER.search(description)
        chosen.append(
            (
                int(step.group(1)) if step else math.inf,
                position if position is not None else math.inf,
                index,
                name,
            )
        )
    return [name for *_, name in sorted(chosen)]


def _request(messages: list[ModelMessage]) -> str:
    """The user's request: the first prompt of the run."""
    for message in messages:
        if isinstance(message, ModelRequest):
            for part in message.parts:
                if isinstance(part, UserPromptPart) and isinstance(part.content, str):
                    return part.content
    return ""


def _latest_return(messages: list[ModelMessage]) -> ToolReturnPart | None:
    if not messages or not isinstance(messages[-1], ModelRequest):
        return None
    returns = [part for part in messages[-1].parts if isinstance(part, ToolReturnPart)]
    return returns[-1] if returns else None


def _plan(request: str, listed: Any) -> ModelResponse:
    activities = [item for item in listed or [] if isinstance(item, Mapping) and "name" in item]
    if not activities:
        return ModelResponse(
            parts=[
                TextPart(
                    "No activities are known, so no workflow was dispatched: give the planner "
                    "the activities it may use (PlannerAgentDeps(activities=[...]))."
                )
            ]
        )
    names = choose_steps(request, activities)
    if not names:
        known = ", ".join(item["name"] for item in activities)
        return ModelResponse(
            parts=[
                TextPart(
                    f"None of the known activities ({known}) matches the request {request!r}, "
                    "so no workflow was dispatched. Name the activities to run, or describe "
                    "them in words their descriptions use."
                )
            ]
        )
    steps = [{"activity": name, "prompt": request} for name in names]
    return ModelResponse(parts=[ToolCallPart("dispatch_workflow", {"steps": steps})])


def _respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    returned = _latest_return(messages)
    if returned is None:
        return ModelResponse(parts=[ToolCallPart("list_activities", {})])
    if returned.tool_name == "list_activities":
        return _plan(_request(messages), returned.content)
    reply = str(returned.content)
    if reply.startswith("Refused"):
        return ModelResponse(parts=[TextPart(reply)])
    return ModelResponse(parts=[TextPart(f"Dispatched workflow {reply}.")])


def offline_planner_model() -> FunctionModel:
    """A deterministic, offline model for the planner agent (no key, no network)."""
    return FunctionModel(_respond, model_name=OFFLINE_PLANNER_NAME)
