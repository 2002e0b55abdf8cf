"""Built-in components, registered through the same hooks as third-party plugins."""

from __future__ import annotations

from typing import Any

from .hookspecs import Register, hookimpl
from .security.ed25519_signer import Ed25519Signer
from .security.hmac_signer import HmacSigner
from .security.jwt_identity import JwtIdentityProvider
from .transports.inmemory import InMemoryTransport

__all__ = [
    "register_identity_providers",
    "register_signers",
    "register_transports",
    "register_workflow_stores",
]


@hookimpl
def register_transports(register: Register) -> None:
    """Register the in-memory transport as ``inmemory``."""
    register("inmemory", InMemoryTransport)


@hookimpl
def register_signers(register: Register) -> None:
    """Register the HS256 signer as ``hmac`` and the EdDSA signer as ``ed25519``."""
    register("hmac", HmacSigner)
    register("ed25519", Ed25519Signer)


@hookimpl
def register_identity_providers(register: Register) -> None:
    """Register the JWT on-behalf-of token validator as ``jwt``."""
    register("jwt", JwtIdentityProvider)


def _sqlite_store(**options: Any) -> Any:
    """A SqliteWorkflowStore (imported on first use: workers never need it)."""
    from .store.sqlite import SqliteWorkflowStore

    return SqliteWorkflowStore(**options)


def _memory_store(**options: Any) -> Any:
    """A MemoryWorkflowStore."""
    from .store.memory import MemoryWorkflowStore

    return MemoryWorkflowStore(**options)


@hookimpl
def register_workflow_stores(register: Register) -> None:
    """Register the embedded sqlite store as ``sqlite`` and the in-process one as ``memory``."""
    register("sqlite", _sqlite_store)
    register("memory", _memory_store)
