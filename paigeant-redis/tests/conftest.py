"""Fixtures for paigeant-redis tests: a real Redis on loopback, keys under a per-run prefix.

When Redis is unreachable the tests are skipped with the reason, except under ``CI=true``,
where they fail: CI must not go green without having run them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import redis

#: The server the tests use; loopback only.
REDIS_URL = os.environ.get("PAIGEANT_REDIS_TEST_URL", "redis://127.0.0.1:6379/0")
START_HINT = (
    "start one with: redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 "
    '--save "" --appendonly no'
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "no_redis: the test does not need a Redis server")


def _redis_problem() -> str | None:
    """Why Redis at REDIS_URL cannot be used, or None when it answers."""
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=2)
        try:
            client.ping()
        finally:
            client.close()
    except (redis.RedisError, OSError) as exc:
        return f"Redis at {REDIS_URL} is unreachable ({exc}); {START_HINT}"
    return None


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of the test Redis server."""
    return REDIS_URL


@pytest.fixture(scope="session")
def key_prefix() -> Iterator[str]:
    """A key prefix unique to this test run; its keys are deleted at the end."""
    prefix = f"paigeant-test-{uuid.uuid4().hex[:10]}"
    yield prefix
    if _redis_problem() is None:
        client = redis.Redis.from_url(REDIS_URL)
        try:
            keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


@pytest.fixture(scope="session")
def _redis_status() -> str | None:
    return _redis_problem()


@pytest.fixture(autouse=True)
def _require_redis(request: pytest.FixtureRequest, _redis_status: str | None) -> None:
    """Skip (or under CI=true, fail) a test that needs Redis when Redis is unreachable."""
    if _redis_status is None or request.node.get_closest_marker("no_redis"):
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{_redis_status} (CI=true: Redis tests must run)", pytrace=False)
    pytest.skip(_redis_status)
