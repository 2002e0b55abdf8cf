"""RedisTransport passes paigeant's transport conformance suite against a real Redis."""

from __future__ import annotations

import pytest

from paigeant.testing import TransportConformance
from paigeant_redis import RedisTransport


class TestRedisConformance(TransportConformance):
    """Every rule of the Transport contract, on Redis Streams."""

    visibility_timeout = 1.0
    redelivery_grace = 3.0
    forward_uses_publish = False  # forward + ack is one Lua script; see test_redis_transport

    @pytest.fixture(autouse=True)
    def _redis_settings(self, redis_url: str, key_prefix: str) -> None:
        self.redis_url = redis_url
        self.key_prefix = key_prefix

    def make_transport(self) -> RedisTransport:
        return RedisTransport(url=self.redis_url, key_prefix=self.key_prefix)
