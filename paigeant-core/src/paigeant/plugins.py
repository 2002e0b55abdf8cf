"""Plugin loading (pluggy + the ``paigeant`` entry-point group) and component lookup by name."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import pluggy

from . import hookspecs
from .errors import DuplicatePluginError, PluginLoadError, PluginNotFoundError

if TYPE_CHECKING:
    from .security.identity import IdentityProvider
    from .security.signer import Signer
    from .transports.base import Transport

__all__ = [
    "DEFAULT_PLUGINS",
    "ENTRY_POINT_GROUP",
    "PluginInfo",
    "Registration",
    "blocked_plugins",
    "core_version",
    "create_component",
    "get_identity_provider",
    "get_plugin_manager",
    "get_signer",
    "get_transport",
    "list_plugins",
    "registrations",
    "reset_plugins",
]

ENTRY_POINT_GROUP = "paigeant"
DEFAULT_PLUGINS: tuple[str, ...] = ("paigeant.builtin_plugins",)
CORE_DISTRIBUTION = "paigeant-core"

Kind = Literal["transport", "signer", "identity_provider", "workflow_store"]
_HOOKS: dict[Kind, str] = {
    "transport": "register_transports",
    "signer": "register_signers",
    "identity_provider": "register_identity_providers",
    "workflow_store": "register_workflow_stores",
}
_ENV: dict[Kind, str] = {
    "transport": "PAIGEANT_TRANSPORT",
    "signer": "PAIGEANT_SIGNER",
    "identity_provider": "PAIGEANT_IDENTITY_PROVIDER",
    "workflow_store": "PAIGEANT_STORE",
}
_DEFAULTS: dict[Kind, str | None] = {
    "transport": "inmemory",
    "signer": "hmac",
    "identity_provider": "jwt",
    "workflow_store": "sqlite",
}


@dataclass(frozen=True)
class Registration:
    """One name registered by a plugin: kind, name, factory and where it came from."""

    kind: Kind
    name: str
    factory: Callable[..., Any]
    plugin: str
    distribution: str
    version: str


@dataclass(frozen=True)
class PluginInfo:
    """A loaded plugin, its distribution and version, and what it registers."""

    name: str
    distribution: str
    version: str
    registers: tuple[str, ...]


_manager: pluggy.PluginManager | None = None
_plugin_dists: dict[str, tuple[str, str]] = {}


def core_version() -> str:
    """The installed version of paigeant-core."""
    try:
        return importlib.metadata.version(CORE_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - source checkout
        return "0+unknown"


def blocked_plugins() -> list[str]:
    """Entry-point names blocked by ``PAIGEANT_DISABLE_PLUGINS`` (comma separated)."""
    raw = os.environ.get("PAIGEANT_DISABLE_PLUGINS", "")
    return [name.strip() for name in raw.split(",") if name.strip()]


def _load_entry_points(manager: pluggy.PluginManager) -> dict[str, tuple[str, str]]:
    """Register every ``paigeant`` entry point not blocked; a broken one fails with its name."""
    loaded: dict[str, tuple[str, str]] = {}
    for dist in importlib.metadata.distributions():
        for ep in dist.entry_points:
            if ep.group != ENTRY_POINT_GROUP or manager.is_blocked(ep.name):
                continue
            dist_name = dist.metadata["name"] or "?"
            if manager.get_plugin(ep.name) is not None:
                if loaded.get(ep.name, (None,))[0] == dist_name:
                    continue  # the same distribution seen twice on sys.path
                raise DuplicatePluginError(
                    f"plugin name {ep.name!r} is used by {loaded.get(ep.name, ('?',))[0]} and "
                    f"by {dist_name}; uninstall one or block it with PAIGEANT_DISABLE_PLUGINS"
                )
            try:
                plugin = ep.load()
            except Exception as exc:
                raise PluginLoadError(
                    f"plugin {ep.name!r} from {dist_name} {dist.version} failed to load "
                    f"({type(exc).__name__}: {exc}); reinstall or upgrade it, or skip it with "
                    f"PAIGEANT_DISABLE_PLUGINS={ep.name}"
                ) from exc
            manager.register(plugin, name=ep.name)
            loaded[ep.name] = (dist_name, dist.version)
    return loaded


def get_plugin_manager() -> pluggy.PluginManager:
    """Return the plugin manager, loading built-in and entry-point plugins on first call."""
    global _manager, _plugin_dists
    if _manager is None:
        manager = pluggy.PluginManager(ENTRY_POINT_GROUP)
        manager.add_hookspecs(hookspecs)
        for module_name in DEFAULT_PLUGINS:
            manager.register(importlib.import_module(module_name), name=module_name)
        for name in blocked_plugins():
            manager.set_blocked(name)
        dists = _load_entry_points(manager)
        manager.check_pending()
        for module_name in DEFAULT_PLUGINS:
            dists[module_name] = (CORE_DISTRIBUTION, core_version())
        _manager, _plugin_dists = manager, dists
    return _manager


def reset_plugins() -> None:
    """Forget loaded plugins so the next lookup loads them again (for tests and tools)."""
    global _manager
    _manager = None


def registrations(kind: Kind) -> dict[str, Registration]:
    """Return every registration of ``kind`` by name; DuplicatePluginError on a clash."""
    manager = get_plugin_manager()
    dists = _plugin_dists
    found: dict[str, Registration] = {}
    hook = getattr(manager.hook, _HOOKS[kind])
    for impl in reversed(hook.get_hookimpls()):
        distribution, version = dists.get(impl.plugin_name, ("(registered in process)", ""))

        def register(
            name: str,
            factory: Callable[..., Any],
            *,
            _impl: Any = impl,
            _distribution: str = distribution,
            _version: str = version,
        ) -> None:
            registration = Registration(
                kind, name, factory, _impl.plugin_name, _distribution, _version
            )
            previous = found.get(name)
            if previous is not None:
                raise DuplicatePluginError(
                    f"{kind} {name!r} is registered twice: by {previous.distribution} "
                    f"(plugin {previous.plugin}) and by {_distribution} (plugin {_impl.plugin_name}); "
                    "uninstall one or block it with PAIGEANT_DISABLE_PLUGINS"
                )
            found[name] = registration

        impl.function(**{arg: register for arg in impl.argnames})
    return found


def _lookup(kind: Kind, name: str | None, options: dict[str, Any]) -> Any:
    env_var = _ENV[kind]
    chosen = name or os.environ.get(env_var, "").strip() or _DEFAULTS[kind]
    available = registrations(kind)
    registration = available.get(chosen or "")
    if registration is None:
        names = ", ".join(sorted(available)) or "none"
        raise PluginNotFoundError(
            f"unknown {kind.replace('_', ' ')} {chosen!r} (from "
            f"{'argument' if name else env_var}); available: {names}. "
            f"If a plugin provides it, install it: pip install paigeant-{chosen}"
        )
    return registration.factory(**options)


def get_transport(name: str | None = None, **options: Any) -> Transport:
    """Create the transport ``name`` (else ``PAIGEANT_TRANSPORT``, else ``inmemory``)."""
    transport: Transport = _lookup("transport", name, options)
    return transport


def get_signer(name: str | None = None, **options: Any) -> Signer:
    """Create the signer ``name`` (else ``PAIGEANT_SIGNER``, else ``hmac``)."""
    signer: Signer = _lookup("signer", name, options)
    return signer


def get_identity_provider(name: str | None = None, **options: Any) -> IdentityProvider:
    """Create the identity provider ``name`` (else ``PAIGEANT_IDENTITY_PROVIDER``, else ``jwt``)."""
    provider: IdentityProvider = _lookup("identity_provider", name, options)
    return provider


def create_component(kind: Kind, name: str | None = None, **options: Any) -> Any:
    """Create the ``kind`` registered as ``name`` (else its ``PAIGEANT_*`` variable, else default).

    For lookups defined in higher wings (``paigeant.get_workflow_store``).
    """
    return _lookup(kind, name, options)


def list_plugins() -> list[PluginInfo]:
    """Describe every loaded plugin and what it registers, for ``paigeant plugins``."""
    manager = get_plugin_manager()
    dists = _plugin_dists
    registered: dict[str, list[str]] = {}
    for kind in _HOOKS:
        for reg in registrations(kind).values():
            registered.setdefault(reg.plugin, []).append(f"{kind.replace('_', ' ')}: {reg.name}")
    infos = []
    for plugin in manager.get_plugins():
        name = manager.get_name(plugin) or repr(plugin)
        distribution, version = dists.get(name, ("(registered in process)", ""))
        infos.append(PluginInfo(name, distribution, version, tuple(registered.get(name, []))))
    return sorted(infos, key=lambda info: (info.distribution != CORE_DISTRIBUTION, info.name))
