"""What the conformance suite does not cover: plugin lookup, outages, migration, NOTIFY, competition."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from paigeant import (
    ConfigurationError,
    EventType,
    StoreUnavailableError,
    WorkflowRecord,
    get_workflow_store,
)
from paigeant.testing import WorkflowEvents, records_in_every_status, recount
from paigeant_postgres import SCHEMA_VERSION, PostgresWorkflowStore
from paigeant_postgres._schema import _MIGRATIONS

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


async def test_a_version_1_schema_is_migrated_and_keeps_its_workflows(
    postgres_url: str, fresh_schema: str
) -> None:
    w = WorkflowEvents()
    old = WorkflowRecord.from_event(w.dispatched(["a"])).model_dump_json(exclude={"trace_id"})
    quoted = f'"{fresh_schema}"'
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as db:
        await db.execute(f"CREATE SCHEMA {quoted}")
        for statement in _MIGRATIONS[0]:  # what paigeant-postgres with schema version 1 made
            await db.execute(statement.format(s=quoted))
        await db.execute(f"CREATE TABLE {quoted}.schema_version (version INTEGER NOT NULL)")
        await db.execute(f"INSERT INTO {quoted}.schema_version VALUES (1)")
        await db.execute(
            f"INSERT INTO {quoted}.workflows (correlation_id, status, change_seq, summary, record) "
            "VALUES (%s, 'running', 1, '{}', %s)",
            (w.correlation_id, old),
        )
    async with PostgresWorkflowStore(url=postgres_url, schema=fresh_schema) as store:
        record = await store.get(w.correlation_id)
        assert record is not None and record.trace_id is None
        await store.record(w.completed(0, "a"))
        found = await store.get_by_trace(w.trace_id)
        assert found is not None and found.correlation_id == w.correlation_id


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


async def test_a_deadlock_is_retried_inside_record_many(postgres_url: str, schema: str) -> None:
    store = PostgresWorkflowStore(url=postgres_url, schema=schema)
    fold = store._fold
    calls = 0

    async def deadlocked_once(db: Any, fresh: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise psycopg.errors.DeadlockDetected("deadlock detected (injected)")
        await fold(db, fresh)

    store._fold = deadlocked_once  # type: ignore[method-assign]
    w = WorkflowEvents()
    async with store:
        assert await store.record_many([w.dispatched(["a"])]) == 1
        assert calls == 2
        record = await store.get(w.correlation_id)
        assert record is not None and record.events == 1


async def test_a_transaction_aborted_every_time_is_a_store_outage(
    postgres_url: str, schema: str
) -> None:
    store = PostgresWorkflowStore(url=postgres_url, schema=schema)

    async def always(db: Any, fresh: Any) -> None:
        raise psycopg.errors.SerializationFailure("could not serialize access (injected)")

    store._fold = always  # type: ignore[method-assign]
    w = WorkflowEvents()
    async with store:
        with pytest.raises(StoreUnavailableError, match="aborted the batch 5 times"):
            await store.record_many([w.dispatched(["a"])])
        store._fold = PostgresWorkflowStore._fold.__get__(store)  # type: ignore[method-assign]
        assert await store.record_many([w.dispatched(["a"])]) == 1, "the aborted batch was kept"


async def test_a_page_read_while_monitors_compete_never_gains_a_workflow(
    postgres_url: str, schema: str
) -> None:
    # monitor A creates a workflow and is slow to commit; monitor B creates another meanwhile:
    # B's must not slip under A's number and commit first, or A's would appear inside a page
    # a reader already read
    slow = PostgresWorkflowStore(url=postgres_url, schema=schema)
    fast = PostgresWorkflowStore(url=postgres_url, schema=schema)
    reader = PostgresWorkflowStore(url=postgres_url, schema=schema)
    tag = f"page-{uuid.uuid4().hex[:8]}"
    first, second = WorkflowEvents(), WorkflowEvents()
    inside, release = asyncio.Event(), asyncio.Event()
    fold = slow._fold

    class SlowBeforeTheCounter:
        """A connection that pauses before the change counter's update (a long fold)."""

        def __init__(self, db: Any) -> None:
            self.db = db

        async def execute(self, sql: str, *args: Any) -> Any:
            if "UPDATE" in sql and ".meta" in sql:
                inside.set()
                await release.wait()
            return await self.db.execute(sql, *args)

    async def slow_fold(db: Any, fresh: Any) -> None:
        await fold(SlowBeforeTheCounter(db), fresh)

    slow._fold = slow_fold  # type: ignore[method-assign]
    async with slow, fast, reader:
        a = asyncio.ensure_future(slow.record(first.dispatched([tag])))
        await asyncio.wait_for(inside.wait(), 10)
        b = asyncio.ensure_future(fast.record(second.dispatched([tag])))
        await asyncio.sleep(0.5)
        page = await reader.list(activity=tag)
        release.set()
        await asyncio.wait_for(asyncio.gather(a, b), 10)
        after = [item.correlation_id for item in (await reader.list(activity=tag)).items]
    seen = [item.correlation_id for item in page.items]
    assert sorted(after) == sorted([first.correlation_id, second.correlation_id])
    arrived = [cid for cid in after if cid not in seen]
    assert after[: len(arrived)] == arrived, f"read {seen}, then {after}: a read page changed"


async def _listen_backends(postgres_url: str, schema: str) -> list[int]:
    """The server processes of ``schema``'s store LISTEN connection."""
    name = PostgresWorkflowStore(schema=schema).listener_name
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as admin:
        cursor = await admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (name,)
        )
        return [row[0] for row in await cursor.fetchall()]


async def _terminate(postgres_url: str, pids: list[int]) -> None:
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as admin:
        for pid in pids:
            await admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


async def _wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


async def test_watchers_share_one_listen_connection_that_comes_back_after_a_drop(
    postgres_url: str, fresh_schema: str
) -> None:
    # poll_interval=60: what the watchers see within seconds came through NOTIFY
    store = PostgresWorkflowStore(url=postgres_url, schema=fresh_schema, poll_interval=60)
    writer = PostgresWorkflowStore(url=postgres_url, schema=fresh_schema)
    seen: list[list[str]] = [[], []]

    async def watch(index: int) -> None:
        async for record in store.watch():
            seen[index].append(record.correlation_id)

    async with store, writer:
        tasks = [asyncio.ensure_future(watch(i)) for i in range(2)]
        try:

            async def one_backend() -> bool:
                return len(await _listen_backends(postgres_url, fresh_schema)) == 1

            await _wait_for(one_backend, 10, "the two watchers did not share one LISTEN")
            await asyncio.sleep(0.2)  # both watchers took their starting point
            before = WorkflowEvents()
            await writer.record(before.dispatched(["a"]))

            async def both_saw(w: WorkflowEvents) -> bool:
                return all(w.correlation_id in s for s in seen)

            await _wait_for(lambda: both_saw(before), 5, "NOTIFY did not wake the watchers")
            old = await _listen_backends(postgres_url, fresh_schema)
            await _terminate(postgres_url, old)
            during = WorkflowEvents()  # committed while nobody listens: found on reconnect
            await writer.record(during.dispatched(["a"]))

            async def listening_again() -> bool:
                pids = await _listen_backends(postgres_url, fresh_schema)
                return len(pids) == 1 and pids != old

            await _wait_for(listening_again, 10, "the LISTEN connection did not come back")
            after = WorkflowEvents()
            await writer.record(after.dispatched(["a"]))
            await _wait_for(lambda: both_saw(during), 5, "a change made while down was missed")
            await _wait_for(lambda: both_saw(after), 5, "NOTIFY no longer wakes the watchers")
            assert not any(task.done() for task in tasks), [t for t in tasks if t.done()]
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        assert await _listen_backends(postgres_url, fresh_schema) == [], "LISTEN left open"


async def test_watch_gives_up_after_reconnect_timeout(postgres_url: str, fresh_schema: str) -> None:
    store = PostgresWorkflowStore(
        url=postgres_url, schema=fresh_schema, poll_interval=0.2, reconnect_timeout=1.0
    )
    async with store:
        iterator = store.watch()
        first = asyncio.ensure_future(anext(iterator))

        async def listening() -> bool:
            return len(await _listen_backends(postgres_url, fresh_schema)) == 1

        await _wait_for(listening, 10, "watch() never listened")

        async def unreachable() -> psycopg.AsyncConnection[Any]:
            raise psycopg.OperationalError("connection refused (injected)")

        assert store._listen is not None
        store._listen._connect = unreachable  # the server can no longer be reached
        await _terminate(postgres_url, await _listen_backends(postgres_url, fresh_schema))
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError, match="could not listen again within 1s"):
            await asyncio.wait_for(first, 10)
        assert time.monotonic() - started < 5
        await iterator.aclose()


async def test_a_reader_creates_no_schema(postgres_url: str, fresh_schema: str) -> None:
    reader = PostgresWorkflowStore(url=postgres_url, schema=fresh_schema, read_only=True)
    with pytest.raises(StoreUnavailableError, match=r"no workflow store at .*: run a monitor"):
        await reader.connect()
    await reader.close()
    async with await psycopg.AsyncConnection.connect(postgres_url) as connection:
        cursor = await connection.execute(
            "SELECT count(*) FROM pg_namespace WHERE nspname = %s", (fresh_schema,)
        )
        assert await cursor.fetchone() == (0,), "a reader created the schema"


@pytest.fixture
async def select_only_role(postgres_url: str, fresh_schema: str) -> AsyncIterator[str]:
    """A login role that may only read ``fresh_schema``'s tables (dropped after the test)."""
    role = f"paigeant_reader_{uuid.uuid4().hex[:8]}"
    async with PostgresWorkflowStore(url=postgres_url, schema=fresh_schema) as writer:
        await writer.record(WorkflowEvents().dispatched(["a"]))
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as admin:
        await admin.execute(f'CREATE ROLE "{role}" LOGIN')
        await admin.execute(f'GRANT USAGE ON SCHEMA "{fresh_schema}" TO "{role}"')
        await admin.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{fresh_schema}" TO "{role}"')
    try:
        yield make_conninfo(postgres_url, user=role)
    finally:
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as admin:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                (role,),
            )
            await admin.execute(f'DROP OWNED BY "{role}"')
            await admin.execute(f'DROP ROLE "{role}"')


async def test_a_role_that_may_only_select_reads_the_store(
    select_only_role: str, fresh_schema: str
) -> None:
    for read_only in (True, False):  # a current schema is only read, whoever connects
        store = PostgresWorkflowStore(
            url=select_only_role, schema=fresh_schema, read_only=read_only
        )
        async with store:
            page = await store.list()
            assert len(page.items) == 1
            assert await store.get(page.items[0].correlation_id) is not None
            assert (await store.counts())["running"] == 1
    reader = PostgresWorkflowStore(url=select_only_role, schema=fresh_schema, read_only=True)
    async with reader:
        with pytest.raises(ConfigurationError, match="opened read-only"):
            await reader.record(WorkflowEvents().dispatched(["a"]))


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://db.example:abc/ops", "port 'abc' is not a number"),
        ("mysql://db.example/ops", "invalid PostgreSQL URL for the postgres workflow store"),
        ("postgresql://db.example/ops?colour=blue", 'invalid URI query parameter: "colour"'),
    ],
)
def test_a_malformed_url_is_a_configuration_error_before_any_connection(
    url: str, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)) as caught:
        PostgresWorkflowStore(url=url)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "code", "message"),
    [
        ("postgresql://127.0.0.1:1/none", 1, "cannot reach the postgres workflow store at"),
        ("postgresql://db.example:abc/ops", 2, "port 'abc' is not a number"),
    ],
)
def test_a_bad_or_unreachable_url_is_one_line_at_once(
    tmp_path: Any, url: str, code: int, message: str
) -> None:
    env = {**os.environ, "PAIGEANT_STORE": "postgres", "PAIGEANT_STORE_URL": url}
    env["PAIGEANT_HOME"] = str(tmp_path)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "paigeant", "workflows", "list"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == code, done.stderr
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stderr.startswith("error: ") and message in done.stderr
    assert time.monotonic() - started < 8, "it waited for the pool's retries"


async def test_a_version_2_schema_is_backfilled_and_counts_stay_exact(
    postgres_url: str, fresh_schema: str
) -> None:
    quoted = f'"{fresh_schema}"'
    records = records_in_every_status()
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as db:
        await db.execute(f"CREATE SCHEMA {quoted}")
        for migration in _MIGRATIONS[:2]:  # what paigeant-postgres with schema version 2 made
            for statement in migration:
                await db.execute(statement.format(s=quoted))
        await db.execute(f"CREATE TABLE {quoted}.schema_version (version INTEGER NOT NULL)")
        await db.execute(f"INSERT INTO {quoted}.schema_version VALUES (1), (2)")
        for change, record in enumerate(records, 1):
            cursor = await db.execute(
                f"INSERT INTO {quoted}.workflows (correlation_id, status, change_seq, summary, "
                "record, trace_id) VALUES (%s, %s, %s, %s, %s, %s) RETURNING seq",
                (
                    record.correlation_id,
                    record.status,
                    change,
                    record.summary().model_dump_json(),
                    record.model_dump_json(),
                    record.trace_id,
                ),
            )
            (seq,) = await cursor.fetchone() or (0,)
            for name in set(record.activities):
                await db.execute(
                    f"INSERT INTO {quoted}.workflow_activities (activity, seq) VALUES (%s, %s)",
                    (name, seq),
                )
        expected = {name: await group_by(db, quoted, name) for name in (None, "a", "b", "c")}
    assert expected[None] == dict.fromkeys(OLD_STATUSES, 8)
    async with PostgresWorkflowStore(url=postgres_url, schema=fresh_schema) as store:
        for name, counts in expected.items():
            found = await store.counts(activity=name)
            assert {s: n for s, n in found.items() if n} == counts, name
            assert found == await recount(store, name), name
        w = WorkflowEvents()  # counting goes on from the backfilled figures
        await store.record_many(
            [w.dispatched(["a", "d"]), w.finished(EventType.WORKFLOW_COMPLETED, 1)]
        )
        assert (await store.counts())["completed"] == 9
        assert (await store.counts(activity="a"))["completed"] == 5
        assert (await store.counts(activity="d"))["completed"] == 1
        for name in (None, "a", "b", "c", "d"):
            found = await store.counts(activity=name)
            assert found == await recount(store, name), name


OLD_STATUSES = ("running", "completed", "compensating", "faulted", "terminated")


async def group_by(
    db: psycopg.AsyncConnection[Any], quoted: str, activity: str | None
) -> dict[str, int]:
    """Workflows per status counted from the rows (statuses with none left out)."""
    if activity is None:
        cursor = await db.execute(f"SELECT status, count(*) FROM {quoted}.workflows GROUP BY 1")
    else:
        cursor = await db.execute(
            f"SELECT w.status, count(*) FROM {quoted}.workflow_activities a "
            f"JOIN {quoted}.workflows w ON w.seq = a.seq WHERE a.activity = %s GROUP BY 1",
            (activity,),
        )
    return {status: int(n) for status, n in await cursor.fetchall()}


async def test_competing_writers_keep_the_counts_exact_without_deadlocks(
    postgres_url: str, schema: str
) -> None:
    tags = [f"count-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    workflows = [WorkflowEvents() for _ in range(60)]
    events = []
    for i, w in enumerate(workflows):
        names = [tags[i % 3], tags[(i + 1) % 3]]
        events += [w.dispatched(names), w.completed(0, names[0])]
        if i % 4 == 0:
            events.append(w.finished(EventType.WORKFLOW_COMPLETED, 1))
        elif i % 4 == 1:
            events.append(w.faulted(1, names[1]))
        elif i % 4 == 2:
            extra = tags[(i + 2) % 3]
            events += [w.revised(0, names[0], [extra]), w.started(1, extra)]
    stores = [PostgresWorkflowStore(url=postgres_url, schema=schema) for _ in range(3)]
    aborted: list[BaseException] = []
    for store in stores:
        fold = store._fold

        async def counting(db: Any, fresh: Any, fold: Any = fold) -> None:
            try:
                await fold(db, fresh)
            except (psycopg.errors.DeadlockDetected, psycopg.errors.TransactionRollback) as exc:
                aborted.append(exc)
                raise

        store._fold = counting  # type: ignore[method-assign]
        await store.connect()
    try:
        # every writer gets every event, in its own order and batching (competing monitors)
        async def write(index: int) -> int:
            mine = events if index != 1 else list(reversed(events))
            if index == 2:
                mine = events[1::2] + events[::2]
            total = 0
            for start in range(0, len(mine), 7 + index):
                total += await stores[index].record_many(mine[start : start + 7 + index])
            return total

        totals = await asyncio.gather(*(write(i) for i in range(3)))
        assert sum(totals) == len(events)
        assert aborted == []
        for tag in tags:
            counts = await stores[0].counts(activity=tag)
            assert counts == await recount(stores[0], tag), tag
            assert sum(counts.values()) == 60 * 2 // 3 + 5  # two of three tags each, 5 revised
            assert counts["completed"] == 10 and counts["compensating"] == 10, tag
        assert await stores[0].counts() == await recount(stores[0])
    finally:
        for store in stores:
            await store.close()
