"""The paigeant command line: version, plugins, and plain refusals instead of hangs."""

from __future__ import annotations

import importlib.metadata

import pytest
from typer.testing import CliRunner

from paigeant import __version__, plugins
from paigeant.cli.app import _parse_vars, app

runner = CliRunner()


@pytest.fixture(autouse=True)
def _only_builtin_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.metadata, "distributions", list)
    plugins.reset_plugins()


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"paigeant {__version__}"


def test_plugins_lists_the_builtins() -> None:
    result = runner.invoke(app, ["plugins"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "paigeant.builtin_plugins" in result.output
    assert "paigeant-core" in result.output
    assert "transport: inmemory" in result.output
    assert "workflow store: sqlite" in result.output and "workflow store: memory" in result.output


@pytest.mark.parametrize("command", [["worker", "guides.onboarding_example"], ["dispatch", "a"]])
def test_cross_process_commands_refuse_the_in_memory_transport(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--transport", "inmemory"])
    assert result.exit_code == 2
    assert "only reaches queues inside one process" in result.output


def test_unknown_transport_is_one_clear_line() -> None:
    result = runner.invoke(app, ["dispatch", "a", "--transport", "kafka"])
    assert result.exit_code == 2
    assert "unknown transport 'kafka'" in result.output
    assert "pip install paigeant-kafka" in result.output


def test_var_values_are_json_when_they_can_be() -> None:
    assert _parse_vars(["n=3", "s=hello", 'o={"a": [1]}', "e="]) == {
        "n": 3,
        "s": "hello",
        "o": {"a": [1]},
        "e": "",
    }


def test_var_without_equals_is_rejected() -> None:
    result = runner.invoke(app, ["dispatch", "a", "--var", "oops", "--transport", "kafka"])
    assert result.exit_code == 2
    assert "KEY=VALUE" in result.output and "kafka" not in result.output


def test_invalid_activity_name_is_rejected() -> None:
    result = runner.invoke(app, ["dispatch", "bad name", "--transport", "kafka"])
    assert result.exit_code == 2
    assert "invalid activity name 'bad name'" in result.output
