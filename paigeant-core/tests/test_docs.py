"""Docs never rot: every hook appears in the plugin guide with its exact signature."""

from __future__ import annotations

import inspect
from pathlib import Path

import pluggy
import pytest

from paigeant import hookspecs

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _hooks() -> list[str]:
    manager = pluggy.PluginManager("paigeant")
    manager.add_hookspecs(hookspecs)
    return sorted(name for name in dir(manager.hook) if not name.startswith("_"))


@pytest.mark.skipif(not DOCS.exists(), reason="docs/ is only in the repository checkout")
@pytest.mark.parametrize("hook", _hooks())
def test_hook_is_documented_with_its_signature(hook: str) -> None:
    params = ", ".join(inspect.signature(getattr(hookspecs, hook)).parameters)
    text = (DOCS / "writing-plugins.md").read_text()
    assert f"`{hook}({params})`" in text, (
        f"docs/writing-plugins.md does not document {hook}({params})"
    )
