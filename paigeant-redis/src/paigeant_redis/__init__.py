"""paigeant-redis: a paigeant Transport over Redis Streams (``get_transport("redis")``)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .delivery import RedisDelivery
from .transport import DEFAULT_KEY_PREFIX, DEFAULT_PUBLISH_TIMEOUT, DEFAULT_URL, RedisTransport

try:
    __version__ = version("paigeant-redis")
except PackageNotFoundError:  # pragma: no cover - source tree without metadata
    __version__ = "0+unknown"

__all__ = [
    "DEFAULT_KEY_PREFIX",
    "DEFAULT_PUBLISH_TIMEOUT",
    "DEFAULT_URL",
    "RedisDelivery",
    "RedisTransport",
    "__version__",
]
