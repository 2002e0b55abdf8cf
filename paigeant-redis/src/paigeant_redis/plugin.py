"""The paigeant plugin module of paigeant-redis: registers the ``redis`` transport."""

from __future__ import annotations

from paigeant import hookimpl
from paigeant.hookspecs import Register

from .transport import RedisTransport

__all__ = ["register_transports"]


@hookimpl
def register_transports(register: Register) -> None:
    """Register RedisTransport as ``redis``."""
    register("redis", RedisTransport)
