"""The paigeant plugin module of paigeant-rabbitmq: registers the ``rabbitmq`` transport."""

from __future__ import annotations

from paigeant import hookimpl
from paigeant.hookspecs import Register

from .transport import RabbitMQTransport

__all__ = ["register_transports"]


@hookimpl
def register_transports(register: Register) -> None:
    """Register RabbitMQTransport as ``rabbitmq``."""
    register("rabbitmq", RabbitMQTransport)
