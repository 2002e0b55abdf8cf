"""pytest plugin of paigeant-core: the conformance suites run in a folder with no pytest config.

pytest-asyncio warns at start-up when ``asyncio_default_fixture_loop_scope`` is unset. When no
configuration file was found at all (a plugin author trying ``TransportConformance`` in a fresh
folder), this sets it to ``function``, the scope the suites use and pytest-asyncio's announced
default, so that warning is not printed. A project with a configuration file is left alone, as
is an explicit ``-o asyncio_default_fixture_loop_scope=...``. Disable with ``-p no:paigeant``.
"""

from __future__ import annotations

import pytest

__all__ = ["pytest_configure"]

_LOOP_SCOPE = "asyncio_default_fixture_loop_scope"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Default the async fixture loop scope to ``function`` when there is no configuration."""
    if config.inipath is not None or not config.pluginmanager.hasplugin("asyncio"):
        return
    try:
        if config.getini(_LOOP_SCOPE):
            return
    except ValueError:  # an old pytest-asyncio without the option
        return
    cache = getattr(config, "_inicache", None)  # where getini() looks first
    if isinstance(cache, dict):
        cache[_LOOP_SCOPE] = "function"
