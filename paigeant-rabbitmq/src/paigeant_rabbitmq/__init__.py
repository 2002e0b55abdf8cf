"""paigeant-rabbitmq: a paigeant Transport over RabbitMQ quorum queues (``get_transport("rabbitmq")``)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from ._errors import PublishRefusedError, UnroutableError
from ._names import MAX_DELAY
from .delivery import RabbitMQDelivery
from .transport import DEFAULT_PUBLISH_TIMEOUT, DEFAULT_URL, RabbitMQTransport

try:
    __version__ = version("paigeant-rabbitmq")
except PackageNotFoundError:  # pragma: no cover - source tree without metadata
    __version__ = "0+unknown"

__all__ = [
    "DEFAULT_PUBLISH_TIMEOUT",
    "DEFAULT_URL",
    "MAX_DELAY",
    "PublishRefusedError",
    "RabbitMQDelivery",
    "RabbitMQTransport",
    "UnroutableError",
    "__version__",
]
