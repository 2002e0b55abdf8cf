"""``paigeant dashboard`` lives in core's CLI but loads the dashboard package only when run."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from paigeant.cli import app


def test_without_the_dashboard_package_it_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "paigeant_dashboard", None)  # as if not installed
    result = CliRunner().invoke(app, ["dashboard"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert "pip install paigeant-dashboard" in lines[0]
    assert "paigeant[dashboard]" in lines[0]


def test_the_cli_imports_no_web_framework() -> None:
    code = (
        "import sys, paigeant.cli.app\n"
        "loaded = [m for m in ('starlette', 'uvicorn', 'jinja2', 'paigeant_dashboard')"
        " if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
