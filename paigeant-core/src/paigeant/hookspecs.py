"""Hook specifications: the four ways a plugin extends paigeant."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pluggy import HookimplMarker, HookspecMarker

__all__ = [
    "hookimpl",
    "hookspec",
    "register_identity_providers",
    "register_signers",
    "register_transports",
    "register_workflow_stores",
]

hookspec = HookspecMarker("paigeant")
hookimpl = HookimplMarker("paigeant")

Register = Callable[[str, Callable[..., Any]], None]


@hookspec
def register_transports(register: Register) -> None:
    """Register transports: call ``register(name, factory)``; ``factory(**options)`` returns a Transport."""


@hookspec
def register_signers(register: Register) -> None:
    """Register signers: call ``register(name, factory)``; ``factory(**options)`` returns a Signer."""


@hookspec
def register_identity_providers(register: Register) -> None:
    """Register identity providers: call ``register(name, factory)`` returning an IdentityProvider."""


@hookspec
def register_workflow_stores(register: Register) -> None:
    """Register workflow stores: call ``register(name, factory)`` returning a WorkflowStore."""
