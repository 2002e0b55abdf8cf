"""Plugin discovery, lookup precedence, blocking and the errors a plugin user sees."""

from __future__ import annotations

import importlib.metadata
import sys
import types
from collections.abc import Iterator
from typing import Any

import pluggy
import pytest

import paigeant
from paigeant import hookimpl, plugins
from paigeant.errors import DuplicatePluginError, PluginLoadError, PluginNotFoundError
from paigeant.transports.inmemory import InMemoryTransport


class AcmeTransport(InMemoryTransport):
    """A stand-in third-party transport."""

    def __init__(self, **options: Any) -> None:
        super().__init__()
        self.options = options


@pytest.fixture(autouse=True)
def fresh_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for var in ("PAIGEANT_TRANSPORT", "PAIGEANT_SIGNER", "PAIGEANT_DISABLE_PLUGINS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(importlib.metadata, "distributions", list)  # only what a test installs
    plugins.reset_plugins()
    yield
    plugins.reset_plugins()


def _module(name: str, source: str) -> types.ModuleType:
    module = types.ModuleType(name)
    exec(compile(source, name, "exec"), module.__dict__)
    sys.modules[name] = module
    return module


class _FakeDist:
    """Enough of importlib.metadata.Distribution for entry-point discovery, as pluggy's tests do."""

    def __init__(self, name: str, version: str, entry_points: dict[str, str]) -> None:
        self.metadata = {"name": name}
        self.version = version
        self.entry_points = [
            importlib.metadata.EntryPoint(ep_name, value, plugins.ENTRY_POINT_GROUP)
            for ep_name, value in entry_points.items()
        ]


def _install(monkeypatch: pytest.MonkeyPatch, *dists: _FakeDist) -> None:
    monkeypatch.setattr(importlib.metadata, "distributions", lambda: list(dists))


ACME_PLUGIN = """
from paigeant import hookimpl
from test_plugins_support import AcmeTransport

@hookimpl
def register_transports(register):
    register("acme", AcmeTransport)
"""


@pytest.fixture
def acme_module() -> Iterator[None]:
    support = types.ModuleType("test_plugins_support")
    support.AcmeTransport = AcmeTransport  # type: ignore[attr-defined]
    sys.modules["test_plugins_support"] = support
    _module("acme_paigeant_plugin", ACME_PLUGIN)
    yield
    sys.modules.pop("acme_paigeant_plugin", None)
    sys.modules.pop("test_plugins_support", None)


def test_default_transport_is_inmemory() -> None:
    transport = paigeant.get_transport()
    assert isinstance(transport, InMemoryTransport)


def test_options_reach_the_factory() -> None:
    transport = paigeant.get_transport("inmemory", visibility_timeout=7.0)
    assert transport.visibility_timeout == 7.0


def test_plugin_registered_in_process() -> None:
    class Plugin:
        @hookimpl
        def register_transports(self, register: Any) -> None:
            register("local", AcmeTransport)

    plugins.get_plugin_manager().register(Plugin(), name="local-plugin")
    transport = paigeant.get_transport("local", region="eu")
    assert isinstance(transport, AcmeTransport)
    assert transport.options == {"region": "eu"}


def test_entry_point_plugin_is_discovered_with_its_distribution(
    monkeypatch: pytest.MonkeyPatch, acme_module: None
) -> None:
    _install(monkeypatch, _FakeDist("acme-transport", "1.2.3", {"acme": "acme_paigeant_plugin"}))
    assert isinstance(paigeant.get_transport("acme"), AcmeTransport)
    monkeypatch.setenv("PAIGEANT_TRANSPORT", "acme")
    assert isinstance(paigeant.get_transport(), AcmeTransport)
    info = {p.name: p for p in plugins.list_plugins()}["acme"]
    assert (info.distribution, info.version) == ("acme-transport", "1.2.3")
    assert info.registers == ("transport: acme",)


def test_argument_beats_environment(monkeypatch: pytest.MonkeyPatch, acme_module: None) -> None:
    _install(monkeypatch, _FakeDist("acme-transport", "1.2.3", {"acme": "acme_paigeant_plugin"}))
    monkeypatch.setenv("PAIGEANT_TRANSPORT", "acme")
    assert type(paigeant.get_transport("inmemory")) is InMemoryTransport


def test_blocked_plugin_is_not_loaded(monkeypatch: pytest.MonkeyPatch, acme_module: None) -> None:
    _install(monkeypatch, _FakeDist("acme-transport", "1.2.3", {"acme": "acme_paigeant_plugin"}))
    monkeypatch.setenv("PAIGEANT_DISABLE_PLUGINS", "other, acme")
    with pytest.raises(PluginNotFoundError):
        paigeant.get_transport("acme")
    assert "acme" not in {p.name for p in plugins.list_plugins()}


def test_unknown_name_lists_available_and_install_hint() -> None:
    with pytest.raises(PluginNotFoundError) as info:
        paigeant.get_transport("kafka")
    message = str(info.value)
    assert "'kafka'" in message
    assert "available: inmemory" in message
    assert "pip install paigeant-kafka" in message
    assert isinstance(info.value, LookupError)


def test_unknown_name_from_environment_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAIGEANT_TRANSPORT", "nope")
    with pytest.raises(PluginNotFoundError, match="PAIGEANT_TRANSPORT"):
        paigeant.get_transport()


def test_duplicate_name_names_both_distributions(
    monkeypatch: pytest.MonkeyPatch, acme_module: None
) -> None:
    _module("acme_clone_plugin", ACME_PLUGIN)  # registers the same transport name
    _install(
        monkeypatch,
        _FakeDist("acme-transport", "1.0", {"acme": "acme_paigeant_plugin"}),
        _FakeDist("acme-fork", "2.0", {"acme-fork": "acme_clone_plugin"}),
    )
    with pytest.raises(DuplicatePluginError) as info:
        paigeant.get_transport("acme")
    assert "acme-transport" in str(info.value) and "acme-fork" in str(info.value)


def test_misspelt_hook_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    _module(
        "typo_paigeant_plugin",
        "from paigeant import hookimpl\n"
        "@hookimpl\n"
        "def register_transport(register):\n"
        "    register('typo', object)\n",
    )
    _install(monkeypatch, _FakeDist("typo-transport", "0.1", {"typo": "typo_paigeant_plugin"}))
    with pytest.raises(pluggy.PluginValidationError, match="register_transport"):
        paigeant.get_transport()


def test_plugin_that_fails_to_import_names_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    _install(monkeypatch, _FakeDist("broken-transport", "0.9", {"broken": "no_such_module_xyz"}))
    with pytest.raises(PluginLoadError) as info:
        paigeant.get_transport()
    message = str(info.value)
    assert "broken-transport 0.9" in message and "PAIGEANT_DISABLE_PLUGINS=broken" in message


def test_builtins_are_listed_with_core_distribution() -> None:
    listed = {p.name: p for p in plugins.list_plugins()}
    builtin = listed["paigeant.builtin_plugins"]
    assert builtin.distribution == "paigeant-core"
    assert "transport: inmemory" in builtin.registers
    assert "signer: hmac" in builtin.registers


def test_hookspecs_hold_exactly_four_hooks() -> None:
    from paigeant import hookspecs

    manager = pluggy.PluginManager("paigeant")
    manager.add_hookspecs(hookspecs)
    hooks = sorted(name for name in dir(manager.hook) if not name.startswith("_"))
    assert hooks == [
        "register_identity_providers",
        "register_signers",
        "register_transports",
        "register_workflow_stores",
    ]
    assert paigeant.hookimpl is hookspecs.hookimpl
