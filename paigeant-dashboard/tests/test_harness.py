"""The browser tests' own rule: without Chromium they skip, with the reason, and fail under CI."""

from __future__ import annotations

import pytest

from . import conftest as harness


def test_missing_chromium_skips_outside_ci_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(harness, "CHROMIUM", "/nonexistent/chromium")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y --no-install-recommends"):
        harness.require_chromium()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"\.ci/run installs it"):
        harness.require_chromium()
