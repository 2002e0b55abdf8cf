"""Model choice: PAIGEANT_MODEL, the offline default, and clear errors for a missing package or key."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel
from pydantic_ai import Agent
from pydantic_ai.exceptions import UserError
from pydantic_ai.models.function import FunctionModel
from pydantic_ai.models.test import TestModel

from paigeant import ActivitySpec, RetryPolicy, Worker, WorkflowDispatcher
from paigeant.agents import (
    ModelConfigurationError,
    PaigeantAgent,
    load_model,
    resolve_model,
    scripted_model,
)
from paigeant.agents import model as model_module
from paigeant.errors import ConfigurationError
from paigeant.transports.inmemory import InMemoryTransport

StartWorker = Callable[[Worker], "asyncio.Task[None]"]
needs_no_anthropic = pytest.mark.skipif(
    importlib.util.find_spec("anthropic") is not None, reason="anthropic is installed here"
)


@pytest.fixture(autouse=True)
def _no_model_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PAIGEANT_MODEL", raising=False)


def test_default_is_the_offline_test_model() -> None:
    assert isinstance(resolve_model(), TestModel)


def test_offline_default_can_be_chosen() -> None:
    offline = scripted_model(lambda p, i: "hi")
    assert resolve_model(offline=offline) is offline


def test_paigeant_model_wins_over_the_offline_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAIGEANT_MODEL", "test")
    assert isinstance(resolve_model(offline=scripted_model(lambda p, i: "hi")), TestModel)


def test_an_explicit_model_wins_over_paigeant_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAIGEANT_MODEL", "anthropic:claude-3-5-sonnet-latest")
    assert isinstance(resolve_model("test"), TestModel)


@needs_no_anthropic
def test_missing_provider_package_says_what_to_install_and_which_key_to_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PAIGEANT_MODEL", "anthropic:claude-3-5-sonnet-latest")
    with pytest.raises(ModelConfigurationError) as caught:
        resolve_model()
    message = str(caught.value)
    assert message.startswith("PAIGEANT_MODEL='anthropic:claude-3-5-sonnet-latest' needs the")
    assert 'pip install "pydantic-ai-slim[anthropic]"' in message
    assert "ANTHROPIC_API_KEY" in message
    assert "Unset PAIGEANT_MODEL to run offline" in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert isinstance(caught.value, ConfigurationError)


def test_missing_api_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_key(name: str) -> Any:
        raise UserError(
            "Set the `OPENAI_API_KEY` environment variable or pass it via "
            "`OpenAIProvider(api_key=...)` to use the OpenAI provider."
        )

    monkeypatch.setattr(model_module, "infer_model", no_key)
    monkeypatch.setenv("PAIGEANT_MODEL", "openai:gpt-4o")
    with pytest.raises(ModelConfigurationError) as caught:
        resolve_model()
    assert str(caught.value).startswith(
        "PAIGEANT_MODEL='openai:gpt-4o' needs credentials: set the OPENAI_API_KEY environment "
        "variable."
    )


def test_unknown_model_name_is_explained() -> None:
    with pytest.raises(ModelConfigurationError, match="model 'nonsense' cannot be used"):
        load_model("nonsense")


@needs_no_anthropic
async def test_an_agent_whose_provider_is_missing_faults_at_once_with_the_reason(
    transport: InMemoryTransport, start_worker: StartWorker
) -> None:
    agent = PaigeantAgent(
        "anthropic:claude-3-5-sonnet-latest",
        name="remote",
        defer_model_check=True,
        retry=RetryPolicy(max_attempts=3, initial_delay=0.01),
    )
    start_worker(Worker(transport, [agent]))
    dispatcher = WorkflowDispatcher(transport)
    correlation_id = await dispatcher.dispatch_workflow([ActivitySpec(name="remote")])
    result = await dispatcher.wait_for(correlation_id, timeout=10)
    await dispatcher.close()

    assert result.status == "faulted"
    assert result.fault is not None
    assert result.fault.attempt == 1
    assert "anthropic" in result.fault.error


class Answer(BaseModel):
    value: int


def test_scripted_model_gives_text_or_structured_output() -> None:
    seen: list[tuple[str, str]] = []

    def respond(prompt: str, instructions: str) -> str:
        seen.append((prompt, instructions))
        return "hello"

    text = Agent(scripted_model(respond), instructions="Be kind.").run_sync("hi")
    assert text.output == "hello"
    assert seen == [("hi", "Be kind.")]
    structured = Agent(scripted_model(lambda p, i: {"value": 7}), output_type=Answer)
    assert structured.run_sync("go").output == Answer(value=7)
    assert isinstance(scripted_model(respond), FunctionModel)
