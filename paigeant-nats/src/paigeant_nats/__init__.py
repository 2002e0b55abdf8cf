"""paigeant-nats: a paigeant Transport over NATS JetStream (``get_transport("nats")``)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from ._codec import DEAD_LETTER_ROOM
from ._errors import PublishRefusedError, QueueFullError
from .delivery import NatsDelivery
from .transport import DEFAULT_PREFIX, DEFAULT_PUBLISH_TIMEOUT, DEFAULT_URL, NatsTransport

try:
    __version__ = version("paigeant-nats")
except PackageNotFoundError:  # pragma: no cover - source tree without metadata
    __version__ = "0+unknown"

__all__ = [
    "DEAD_LETTER_ROOM",
    "DEFAULT_PREFIX",
    "DEFAULT_PUBLISH_TIMEOUT",
    "DEFAULT_URL",
    "NatsDelivery",
    "NatsTransport",
    "PublishRefusedError",
    "QueueFullError",
    "__version__",
]
