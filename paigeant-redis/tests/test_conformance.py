"""RedisTransport passes paigeant's transport conformance suite against a real Redis.

The suite runs against a redis-server of its own (AOF on, ``appendfsync always``) so that
``restart_broker`` can kill and restart it; the shared Redis on 6379 is never restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio

from paigeant import Transport
from paigeant.testing import TransportConformance
from paigeant_redis import RedisTransport


class TestRedisConformance(TransportConformance):
    """Every rule of the Transport contract, on Redis Streams."""

    visibility_timeout = 1.0
    redelivery_grace = 3.0
    publish_failure_bound = 15.0  # publish_timeout (10 s by default) plus slack
    supports_browse = True

    @pytest.fixture(autouse=True)
    def _redis_settings(self, aof_redis: Any, key_prefix: str) -> None:
        self.server = aof_redis
        self.key_prefix = key_prefix

    def make_transport(self) -> RedisTransport:
        return RedisTransport(url=self.server.url, key_prefix=self.key_prefix)

    async def restart_broker(self) -> None:
        """SIGKILL the suite's redis-server, keep it down half a second, start it on its AOF."""
        await asyncio.to_thread(self.server.restart, down_for=0.5)

    async def publish_foreign(self, transport: Transport, queue: str, body: bytes) -> None:
        """A plain XADD of a ``body`` field to the queue's stream: no id field, no headers."""
        assert isinstance(transport, RedisTransport)
        raw = redis.asyncio.Redis.from_url(self.server.url)
        try:
            await raw.xadd(transport.keys.stream(queue), {"body": body})
        finally:
            await raw.aclose()

    @contextlib.asynccontextmanager
    async def fail_next_forward(self, transport: Transport, queue: str) -> AsyncIterator[None]:
        """Give the target stream's key the wrong type: the atomic ack script then refuses."""
        assert isinstance(transport, RedisTransport)
        raw = redis.asyncio.Redis.from_url(self.server.url)
        key = transport.keys.stream(queue)
        await raw.set(key, "not a stream")
        try:
            yield
        finally:
            await raw.delete(key)
            await raw.aclose()
