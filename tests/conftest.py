"""Fixtures for cross-package tests: real brokers and databases on loopback (skip, or fail in CI)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import uuid
from collections.abc import Coroutine, Iterator
from typing import Any

import pytest

REDIS_URL = os.environ.get("PAIGEANT_REDIS_TEST_URL", "redis://127.0.0.1:6379/0")
NATS_URL = os.environ.get("PAIGEANT_NATS_TEST_URL", "nats://127.0.0.1:4222")
RABBITMQ_URL = os.environ.get("PAIGEANT_RABBITMQ_TEST_URL", "amqp://guest:guest@127.0.0.1:5672/")


@pytest.fixture(autouse=True)
def _private_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """``PAIGEANT_HOME`` in a fresh directory: no test writes to the real home's store."""
    monkeypatch.setenv("PAIGEANT_HOME", str(tmp_path_factory.mktemp("paigeant-home")))


@pytest.fixture
def redis_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Environment for a Redis-backed run under a unique key prefix, with a signing key."""
    redis = pytest.importorskip("redis")
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
        client.ping()
        client.close()
    except (redis.RedisError, OSError) as exc:
        reason = f"Redis at {REDIS_URL} is unreachable ({exc})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI needs it")
        pytest.skip(reason)
    env = {
        "PAIGEANT_TRANSPORT": "redis",
        "PAIGEANT_REDIS_URL": REDIS_URL,
        "PAIGEANT_REDIS_KEY_PREFIX": f"paigeant-e2e-{uuid.uuid4().hex[:8]}",
        "PAIGEANT_SIGNING_KEY": uuid.uuid4().hex + uuid.uuid4().hex,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    yield env
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{env['PAIGEANT_REDIS_KEY_PREFIX']}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


POSTGRES_URL = os.environ.get("PAIGEANT_POSTGRES_TEST_URL", "postgresql://127.0.0.1:5432/test")


@pytest.fixture
def postgres_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Environment for the postgres workflow store in a schema of its own (dropped after)."""
    psycopg = pytest.importorskip("psycopg")
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=2) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as exc:
        reason = f"PostgreSQL at {POSTGRES_URL} is unreachable ({str(exc).strip()})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI needs it")
        pytest.skip(reason)
    schema = f"paigeant_e2e_{uuid.uuid4().hex[:8]}"
    env = {
        "PAIGEANT_STORE": "postgres",
        "PAIGEANT_STORE_URL": POSTGRES_URL,
        "PAIGEANT_POSTGRES_SCHEMA": schema,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    yield env
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def nats_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Environment for a NATS-backed run under a unique stream prefix, with a signing key."""
    pytest.importorskip("nats")
    prefix = f"pg-e2e-{uuid.uuid4().hex[:8]}"
    try:
        _in_thread(_nats_streams(prefix, delete=False))
    except Exception as exc:
        reason = f"NATS with JetStream at {NATS_URL} is unavailable ({exc!r})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI needs it")
        pytest.skip(reason)
    env = {
        "PAIGEANT_TRANSPORT": "nats",
        "PAIGEANT_NATS_URL": NATS_URL,
        "PAIGEANT_NATS_PREFIX": prefix,
        "PAIGEANT_SIGNING_KEY": uuid.uuid4().hex + uuid.uuid4().hex,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    yield env
    _in_thread(_nats_streams(prefix, delete=True))


def _in_thread(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run ``coroutine`` on an event loop of its own (the caller's loop may be running)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coroutine).result()


async def _nats_streams(prefix: str, *, delete: bool) -> None:
    """Check NATS has JetStream; with ``delete``, delete the streams of ``prefix``."""
    import nats

    async def quiet(exc: Exception) -> None:
        pass

    client = await nats.connect(
        NATS_URL, connect_timeout=1, max_reconnect_attempts=1, error_cb=quiet
    )
    try:
        manager = client.jsm(timeout=5)
        await manager.account_info()
        if delete:
            for info in await manager.streams_info():
                if info.config.name and info.config.name.startswith(prefix.upper()):
                    await manager.delete_stream(info.config.name)
    finally:
        await client.close()


@pytest.fixture
def rabbitmq_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Environment for a RabbitMQ-backed run in a namespace of its own, with a signing key.

    Afterwards the namespace's queues are deleted (listed with ``rabbitmqctl list_queues``,
    which only reads; the shared node is never reconfigured).
    """
    pytest.importorskip("aio_pika")
    try:
        _in_thread(_rabbitmq_queues(None))
    except Exception as exc:
        reason = f"RabbitMQ at 127.0.0.1:5672 is unavailable ({exc!r})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI needs it")
        pytest.skip(reason)
    namespace = f"pg-e2e-{uuid.uuid4().hex[:8]}"
    env = {
        "PAIGEANT_TRANSPORT": "rabbitmq",
        "PAIGEANT_RABBITMQ_URL": RABBITMQ_URL,
        "PAIGEANT_NAMESPACE": namespace,
        "PAIGEANT_SIGNING_KEY": uuid.uuid4().hex + uuid.uuid4().hex,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    yield env
    _in_thread(_rabbitmq_queues(namespace + "."))


async def _rabbitmq_queues(prefix: str | None) -> None:
    """Check RabbitMQ answers; with ``prefix``, delete the queues whose names start with it."""
    import aio_pika

    connection = await aio_pika.connect(RABBITMQ_URL, timeout=3)
    try:
        if prefix is None:
            return
        listed = await asyncio.create_subprocess_exec(
            "rabbitmqctl",
            "-q",
            "list_queues",
            "name",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        output, _ = await listed.communicate()
        channel = await connection.channel()
        for name in output.decode().split():
            if name.startswith(prefix):
                await channel.queue_delete(name)
    finally:
        await connection.close()
