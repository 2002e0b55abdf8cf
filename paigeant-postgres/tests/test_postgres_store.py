"""What the conformance suite does not cover: plugin lookup, outages, migration, NOTIFY, competition."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from paigeant import EventType, StoreUnavailableError, WorkflowRecord, get_workflow_store
from paigeant.testing import WorkflowEvents
from paigeant_postgres import SCHEMA_VERSION, PostgresWorkflowStore

from .conftest import drop_schema


@pytest.fixture
def fresh_schema() -> Iterator[str]:
    name = f"paigeant_test_{uuid.uuid4().hex[:10]}"
    yield name
    drop_schema(name)


async def test_get_workflow_store_finds_it_through_the_entry_point(
    monkeypatch: pytest.MonkeyPatch, postgres_url: str, schema: str
) -> None:
    monkeypatch.setenv("PAIGEANT_STORE", "postgres")
    monkeypatch.setenv("PAIGEANT_STORE_URL", postgres_url)
    monkeypatch.setenv("PAIGEANT_POSTGRES_SCHEMA", schema)
    store = get_workflow_store()
    assert isinstance(store, PostgresWorkflowStore)
    assert (store.url, store.schema) == (postgres_url, schema)
    async with store:
        assert await store.get("nobody") is None


def test_describe_never_shows_the_password() -> None:
    store = PostgresWorkflowStore(url="postgresql://ann:s3cret@db.example:6543/ops", schema="x")
    assert store.describe() == "the postgres workflow store at db.example:6543/ops (schema x)"
    assert "s3cret" not in repr(store)


@pytest.mark.parametrize("bad", ["Upper", "has-dash", "1st", "x" * 41, 'q"uote'])
def test_a_bad_schema_name_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid schema name"):
        PostgresWorkflowStore(schema=bad)


async def test_an_unreachable_server_is_a_clear_error_within_the_timeout() -> None:
    store = PostgresWorkflowStore(url="postgresql://127.0.0.1:1/none", connect_timeout=2)
    started = time.monotonic()
    with pytest.raises(
        StoreUnavailableError,
        match=re.escape("cannot reach the postgres workflow store at 127.0.0.1:1/none"),
    ):
        await store.connect()
    assert time.monotonic() - started < 10
    await store.close()


async def test_concurrent_connects_migrate_once(postgres_url: str, fresh_schema: str) -> None:
    stores = [PostgresWorkflowStore(url=postgres_url, schema=fresh_schema) for _ in range(4)]
    await asyncio.gather(*(store.connect() for store in stores))
    async with await psycopg.AsyncConnection.connect(postgres_url) as connection:
        cursor = await connection.execute(f'SELECT version FROM "{fresh_schema}".schema_version')
        assert [row[0] for row in await cursor.fetchall()] == list(range(1, SCHEMA_VERSION + 1))
    for store in stores:
        await store.close()


async def test_a_schema_from_a_newer_version_is_refused(
    postgres_url: str, fresh_schema: str
) -> None:
    async with PostgresWorkflowStore(url=postgres_url, schema=fresh_schema):
        pass
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as connection:
        await connection.execute(f'INSERT INTO "{fresh_schema}".schema_version VALUES (999)')
    with pytest.raises(StoreUnavailableError, match="schema version 999, newer than"):
        await PostgresWorkflowStore(url=postgres_url, schema=fresh_schema).connect()


async def test_watch_is_woken_by_another_process_commit(postgres_url: str, schema: str) -> None:
    watcher_store = PostgresWorkflowStore(url=postgres_url, schema=schema, poll_interval=60)
    writer = PostgresWorkflowStore(url=postgres_url, schema=schema)
    w = WorkflowEvents()
    async with watcher_store, writer:
        seen: list[WorkflowRecord] = []
        listening = asyncio.Event()

        async def watch() -> None:
            iterator = watcher_store.watch()
            listening.set()
            async for record in iterator:
                if record.correlation_id == w.correlation_id:
                    seen.append(record)
                    return

        task = asyncio.ensure_future(watch())
        await listening.wait()
        await asyncio.sleep(0.5)  # the watcher runs LISTEN and takes its starting point
        started = time.monotonic()
        await writer.record(w.dispatched(["a"]))
        await asyncio.wait_for(task, 10)
        assert time.monotonic() - started < 5, "woken by the poll, not by NOTIFY"
    assert seen[0].status == "running"


async def test_competing_writers_apply_each_event_once(postgres_url: str, schema: str) -> None:
    workflows = [WorkflowEvents() for _ in range(40)]
    events = []
    for w in workflows:
        events += [w.dispatched(["a", "b"]), w.started(0, "a"), w.completed(0, "a", 1)]
        events += [w.completed(1, "b", 2), w.finished(EventType.WORKFLOW_COMPLETED, 1)]
    stores = [PostgresWorkflowStore(url=postgres_url, schema=schema) for _ in range(3)]
    for store in stores:
        await store.connect()
    try:
        # each writer gets every event, in its own order and batching: as competing monitors
        # with redeliveries would
        async def write(index: int) -> int:
            mine = events[index::1] if index == 0 else list(reversed(events))
            total = 0
            for start in range(0, len(mine), 17 + index):
                total += await stores[index].record_many(mine[start : start + 17 + index])
            return total

        totals = await asyncio.gather(*(write(i) for i in range(3)))
        assert sum(totals) == len(events)
        for w in workflows:
            record = await stores[0].get(w.correlation_id)
            assert record is not None
            assert (record.status, record.events) == ("completed", 5)
            assert [s.output for s in record.steps] == [1, 2]
    finally:
        for store in stores:
            await store.close()
