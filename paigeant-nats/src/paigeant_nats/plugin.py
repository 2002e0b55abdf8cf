"""The paigeant plugin module of paigeant-nats: registers the ``nats`` transport."""

from __future__ import annotations

from paigeant import hookimpl
from paigeant.hookspecs import Register

from .transport import NatsTransport

__all__ = ["register_transports"]


@hookimpl
def register_transports(register: Register) -> None:
    """Register NatsTransport as ``nats``."""
    register("nats", NatsTransport)
