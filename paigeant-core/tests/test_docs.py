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


@pytest.mark.skipif(not DOCS.exists(), reason="docs/ is only in the repository checkout")
def test_every_conformance_capability_and_hook_is_documented() -> None:
    from paigeant.testing import TransportConformance

    settings = {
        name
        for cls in TransportConformance.__mro__
        for name, value in vars(cls).items()
        if not name.startswith("_") and isinstance(value, bool | int | float)
    }
    assert {
        "supports_delay",
        "supports_stats",
        "publish_failure_bound",
        "max_body_bytes",
    } <= settings
    text = (DOCS / "writing-plugins.md").read_text()
    hooks = {"make_transport", "restart_broker", "fail_next_forward"}
    missing = sorted(name for name in settings | hooks if f"`{name}" not in text)
    assert not missing, f"docs/writing-plugins.md does not document {missing}"
