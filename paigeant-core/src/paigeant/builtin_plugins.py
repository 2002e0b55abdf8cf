"""Built-in components, registered through the same hooks as third-party plugins."""

from __future__ import annotations

from .hmac_signer import HmacSigner
from .hookspecs import Register, hookimpl
from .inmemory import InMemoryTransport

__all__ = ["register_signers", "register_transports"]


@hookimpl
def register_transports(register: Register) -> None:
    """Register the in-memory transport as ``inmemory``."""
    register("inmemory", InMemoryTransport)


@hookimpl
def register_signers(register: Register) -> None:
    """Register the HS256 signer as ``hmac``."""
    register("hmac", HmacSigner)
