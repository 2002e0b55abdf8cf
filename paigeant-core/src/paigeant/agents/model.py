"""Choosing the model: an explicit one, else ``PAIGEANT_MODEL``, else an offline model; clear errors."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from pydantic_ai.exceptions import UserError
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    UserPromptPart,
)
from pydantic_ai.models import Model, infer_model
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel

from ..errors import ConfigurationError
from ..settings import env_str

__all__ = [
    "MODEL_ENV",
    "ModelConfigurationError",
    "Respond",
    "load_model",
    "resolve_model",
    "scripted_model",
]

#: Environment variable naming the pydantic-ai model agents run with (e.g. ``openai:gpt-4o``).
MODEL_ENV = "PAIGEANT_MODEL"

#: API-key variables of common providers, to mention before their package is even installed.
_KEY_VARS: dict[str, str] = {
    "anthropic": "ANTHROPIC_API_KEY",
    "openai": "OPENAI_API_KEY",
    "openai-chat": "OPENAI_API_KEY",
    "openai-responses": "OPENAI_API_KEY",
    "google-gla": "GOOGLE_API_KEY",
    "google": "GOOGLE_API_KEY",
    "groq": "GROQ_API_KEY",
    "mistral": "MISTRAL_API_KEY",
    "cohere": "CO_API_KEY",
    "deepseek": "DEEPSEEK_API_KEY",
    "openrouter": "OPENROUTER_API_KEY",
    "xai": "XAI_API_KEY",
}

_OFFLINE_HINT = f"Unset {MODEL_ENV} to run offline with pydantic-ai's test model."


class ModelConfigurationError(ConfigurationError):
    """The chosen model cannot be used here: its package is missing, or its API key is not set."""


#: ``respond(prompt, instructions)`` for :func:`scripted_model`: text, or a dict for structured output.
Respond = Callable[[str, str], str | Mapping[str, Any]]


def _provider(name: str) -> str:
    return name.partition(":")[0] if ":" in name else ""


def _import_error_message(label: str, name: str, exc: ImportError) -> str:
    cause = exc.__cause__
    package = getattr(cause, "name", None) or "its provider package"
    command = re.search(r'pip install (?:"[^"]+"|[^\s`]+)', str(exc))
    install = command.group(0) if command else f"pip install {package}"
    key = _KEY_VARS.get(_provider(name))
    then = f", then set {key}" if key else ""
    return (
        f"{label} needs the `{package}` package, which is not installed: run "
        f"{install}{then}. {_OFFLINE_HINT}"
    )


def _user_error_message(label: str, exc: UserError) -> str:
    variables = re.findall(r"`([A-Z][A-Z0-9_]+)` environment variable", str(exc))
    if variables:
        return (
            f"{label} needs credentials: set the {' and '.join(variables)} environment "
            f"variable{'s' if len(variables) > 1 else ''}. {_OFFLINE_HINT}"
        )
    return (
        f"{label} cannot be used: {exc}. Use a pydantic-ai model name such as "
        f"'openai:gpt-4o' or 'anthropic:claude-sonnet-4-5', or 'test' for the offline test model."
    )


def load_model(name: str | Model, *, source: str | None = None) -> Model:
    """Build the pydantic-ai model ``name``; ModelConfigurationError if its package or key is missing.

    Args:
        name: A pydantic-ai model name (``provider:model``, or ``test``) or a Model.
        source: Where the name came from (e.g. ``PAIGEANT_MODEL``), for the error message.
    """
    if isinstance(name, Model):
        return name
    label = f"{source}={name!r}" if source else f"model {name!r}"
    try:
        return infer_model(name)
    except ImportError as exc:
        raise ModelConfigurationError(_import_error_message(label, name, exc)) from None
    except UserError as exc:
        raise ModelConfigurationError(_user_error_message(label, exc)) from None


def resolve_model(model: str | Model | None = None, *, offline: str | Model | None = None) -> Model:
    """Return the model to run with: ``model``, else ``PAIGEANT_MODEL``, else ``offline``.

    The offline default is pydantic-ai's TestModel: no network and no key needed.
    """
    if model is not None:
        return load_model(model)
    configured = env_str(MODEL_ENV)
    if configured is not None:
        return load_model(configured, source=MODEL_ENV)
    if offline is None:
        return TestModel()
    return load_model(offline)


def _last_prompt(messages: list[ModelMessage]) -> str:
    for message in reversed(messages):
        if not isinstance(message, ModelRequest):
            continue
        for part in reversed(message.parts):
            if isinstance(part, UserPromptPart) and isinstance(part.content, str):
                return part.content
    return ""


def scripted_model(
    respond: Respond, *, name: str = "scripted", latency: float = 0.0
) -> FunctionModel:
    """A deterministic offline model: ``respond(prompt, instructions)`` gives each answer.

    A string answer is the text output; a mapping is the structured output (the arguments of the
    agent's output tool). No network, no key: for guides, demos and tests. ``latency`` seconds
    are waited before each answer, to make a demo look like a real model at work.
    """

    async def function(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        if latency > 0:
            await asyncio.sleep(latency)
        reply = respond(_last_prompt(messages), info.instructions or "")
        if isinstance(reply, str):
            if info.allow_text_output or not info.output_tools:
                return ModelResponse(parts=[TextPart(reply)])
            raise ValueError(f"{name}: the agent wants structured output, got text {reply!r}")
        if not info.output_tools:
            return ModelResponse(parts=[TextPart(json.dumps(dict(reply)))])
        return ModelResponse(parts=[ToolCallPart(info.output_tools[0].name, dict(reply))])

    return FunctionModel(function, model_name=name)
