"""PostgresWorkflowStore: the production workflow store (psycopg 3, a connection pool).

Every batch is one transaction: new event ids are claimed in ``events`` (so an event is applied
once even when monitors compete for one queue), the workflows' rows are locked in a fixed order,
folded, written, and the change counter is bumped last, which orders commits by that counter so
``watch()`` never skips a change. ``watch()`` listens on a channel notified at each commit.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import os
from collections.abc import AsyncIterator, Sequence
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from paigeant import (
    WORKFLOW_STATUSES,
    StoreUnavailableError,
    WorkflowEvent,
    WorkflowPage,
    WorkflowRecord,
    WorkflowStore,
    WorkflowSummary,
)

from ._schema import check_schema_name, migrate

__all__ = ["DEFAULT_SCHEMA", "DEFAULT_URL", "PostgresWorkflowStore"]

#: Where the store is when neither ``url`` nor ``PAIGEANT_STORE_URL`` says.
DEFAULT_URL = "postgresql://127.0.0.1:5432/paigeant"
#: The schema holding the store's tables.
DEFAULT_SCHEMA = "paigeant"

_AFTER_EVERY_ROW = 2**62
_DEADLOCK_RETRIES = 5


class PostgresWorkflowStore(WorkflowStore):
    """A WorkflowStore in PostgreSQL: many readers, many competing monitors, LISTEN/NOTIFY watch."""

    name = "postgres"

    def __init__(
        self,
        *,
        url: str | None = None,
        schema: str | None = None,
        min_size: int = 1,
        max_size: int = 4,
        connect_timeout: float = 10.0,
        poll_interval: float = 5.0,
    ) -> None:
        """Use the database at ``url`` (default ``PAIGEANT_STORE_URL``, then DEFAULT_URL).

        Args:
            schema: schema for the tables (default ``PAIGEANT_POSTGRES_SCHEMA``, then ``paigeant``).
            min_size, max_size: bounds of the connection pool.
            connect_timeout: seconds ``connect()`` waits for the server before
                StoreUnavailableError.
            poll_interval: seconds ``watch()`` waits for a notification before looking anyway.
        """
        self.url = url or os.environ.get("PAIGEANT_STORE_URL", "").strip() or DEFAULT_URL
        chosen = schema or os.environ.get("PAIGEANT_POSTGRES_SCHEMA", "").strip() or DEFAULT_SCHEMA
        self.schema = check_schema_name(chosen)
        self.min_size, self.max_size = min_size, max_size
        self.connect_timeout = connect_timeout
        self.poll_interval = poll_interval
        self._pool: AsyncConnectionPool[Any] | None = None
        self._s = f'"{self.schema}"'
        self._channel = f"paigeant_{self.schema}"[:63]

    def describe(self) -> str:
        """``the postgres workflow store at host:port/db (schema s)``, without the password."""
        try:
            info = conninfo_to_dict(self.url)
        except psycopg.ProgrammingError:
            return f"the postgres workflow store (schema {self.schema})"
        where = f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"
        return f"the postgres workflow store at {where} (schema {self.schema})"

    def __repr__(self) -> str:
        return f"PostgresWorkflowStore({self.describe()!r})"

    # -- connection ------------------------------------------------------------------------

    async def connect(self) -> None:
        """Open the pool (waiting at most ``connect_timeout``) and migrate the schema."""
        if self._pool is not None:
            return
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            self.url,
            min_size=self.min_size,
            max_size=self.max_size,
            open=False,
            timeout=self.connect_timeout,
            kwargs={"connect_timeout": max(1, round(self.connect_timeout))},
        )
        try:
            await pool.open(wait=True, timeout=self.connect_timeout)
            async with pool.connection() as connection:
                await migrate(connection, self.schema, self.describe())
        except (PoolTimeout, psycopg.OperationalError) as exc:
            await pool.close()
            raise StoreUnavailableError(
                f"cannot reach {self.describe()}: {exc} (is PostgreSQL running? set "
                "PAIGEANT_STORE_URL, e.g. postgresql://user@host:5432/dbname)"
            ) from None
        except BaseException:
            await pool.close()
            raise
        self._pool = pool

    async def close(self) -> None:
        """Close the pool; idempotent."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        if self._pool is None:
            raise RuntimeError("the workflow store is not connected: call `await store.connect()`")
        try:
            async with self._pool.connection() as connection:
                yield connection
        except (PoolTimeout, psycopg.OperationalError) as exc:
            raise StoreUnavailableError(f"{self.describe()} is unavailable: {exc}") from exc

    # -- writing ---------------------------------------------------------------------------

    async def record_many(self, events: Sequence[WorkflowEvent]) -> int:
        """Record ``events`` in one transaction; return how many were new.

        A deadlock with a competing monitor (possible when both create the same new workflows
        in different orders) is retried.
        """
        if not events:
            return 0
        for attempt in range(1, _DEADLOCK_RETRIES + 1):
            try:
                return await self._record(events)
            except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
                if attempt == _DEADLOCK_RETRIES:
                    raise
                await asyncio.sleep(0.01 * attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _record(self, events: Sequence[WorkflowEvent]) -> int:
        by_key: dict[str, WorkflowEvent] = {}
        for event in events:
            by_key.setdefault(self.event_key(event), event)
        keys = sorted(by_key)  # one lock order for every monitor
        s = self._s
        async with self._connection() as db, db.transaction():
            cursor = await db.execute(
                f"INSERT INTO {s}.events (id, correlation_id, type) "
                "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[]) "
                "ON CONFLICT (id) DO NOTHING RETURNING id",
                (
                    keys,
                    [by_key[k].correlation_id for k in keys],
                    [str(by_key[k].type) for k in keys],
                ),
            )
            new = {row[0] for row in await cursor.fetchall()}
            if not new:
                return 0
            fresh: dict[str, builtins.list[WorkflowEvent]] = {}  # in arrival order
            for key, event in by_key.items():
                if key in new:
                    fresh.setdefault(event.correlation_id, []).append(event)
            await self._fold(db, fresh)
        return len(new)

    async def _fold(
        self, db: psycopg.AsyncConnection[Any], fresh: dict[str, builtins.list[WorkflowEvent]]
    ) -> None:
        s = self._s
        cids = builtins.list(fresh)
        await db.execute(  # new workflows numbered in arrival order: the order ``list`` pages in
            f"INSERT INTO {s}.workflows (correlation_id, status, change_seq, summary, record) "
            "SELECT c, 'running', 0, '', '' FROM unnest(%s::text[]) WITH ORDINALITY AS t(c, n) "
            "ORDER BY n ON CONFLICT (correlation_id) DO NOTHING",
            (cids,),
        )
        cursor = await db.execute(
            f"SELECT seq, correlation_id, record FROM {s}.workflows "
            "WHERE correlation_id = ANY(%s) ORDER BY correlation_id FOR UPDATE",
            (cids,),
        )
        rows: builtins.list[tuple[int, str, str, str]] = []
        activities: builtins.list[tuple[str, int]] = []
        for seq, cid, stored in await cursor.fetchall():
            batch = fresh[cid]
            if stored:
                record = WorkflowRecord.model_validate_json(stored)
            else:
                record, batch = WorkflowRecord.from_event(batch[0]), batch[1:]
            for event in batch:
                record.apply(event)
            rows.append(
                (seq, record.status, record.summary().model_dump_json(), record.model_dump_json())
            )
            activities += [(name, seq) for name in set(record.activities)]
        cursor = await db.execute(
            f"UPDATE {s}.meta SET value = value + 1 WHERE key = 'change_seq' RETURNING value"
        )
        change = (await cursor.fetchone() or (0,))[0]
        await db.execute(
            f"UPDATE {s}.workflows AS w SET status = v.status, change_seq = %s, "
            "summary = v.summary, record = v.record "
            "FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[]) "
            "AS v(seq, status, summary, record) WHERE w.seq = v.seq",
            (change, *(builtins.list(column) for column in zip(*rows, strict=True))),
        )
        await db.execute(
            f"INSERT INTO {s}.workflow_activities (activity, seq) "
            "SELECT * FROM unnest(%s::text[], %s::bigint[]) ON CONFLICT DO NOTHING",
            ([a for a, _ in activities], [seq for _, seq in activities]),
        )
        await db.execute("SELECT pg_notify(%s, %s)", (self._channel, str(change)))

    # -- reading ---------------------------------------------------------------------------

    async def _fetch(self, sql: str, params: Sequence[Any] = ()) -> builtins.list[Any]:
        async with self._connection() as db:
            cursor = await db.execute(sql, params)
            return await cursor.fetchall()

    async def get(self, correlation_id: str) -> WorkflowRecord | None:
        """The record of ``correlation_id``, or None."""
        rows = await self._fetch(
            f"SELECT record FROM {self._s}.workflows WHERE correlation_id = %s", (correlation_id,)
        )
        return WorkflowRecord.model_validate_json(rows[0][0]) if rows and rows[0][0] else None

    async def list(
        self,
        *,
        status: str | None = None,
        activity: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> WorkflowPage:
        """Newest first, filtered, from ``cursor`` on (index scans only)."""
        self.check_query(status, limit)
        before = self.decode_cursor(cursor) if cursor else None
        s = self._s
        clauses: builtins.list[str] = []
        params: builtins.list[Any] = []
        source = f"{s}.workflows w"
        if activity is not None:
            source = f"{s}.workflow_activities a JOIN {s}.workflows w ON w.seq = a.seq"
            clauses.append("a.activity = %s")
            params.append(activity)
        if status is not None:
            clauses.append("w.status = %s")
            params.append(status)
        if before is not None:
            clauses.append(f"{'a' if activity is not None else 'w'}.seq < %s")
            params.append(before)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        order = "a.seq" if activity is not None else "w.seq"
        rows = await self._fetch(
            f"SELECT w.seq, w.summary FROM {source} {where} ORDER BY {order} DESC LIMIT %s",
            (*params, limit + 1),
        )
        page = rows[:limit]
        return WorkflowPage(
            items=[WorkflowSummary.model_validate_json(summary) for _, summary in page],
            next_cursor=self.encode_cursor(page[-1][0]) if len(rows) > limit else None,
        )

    async def counts(self, *, activity: str | None = None) -> dict[str, int]:
        """Workflows per status (every status listed)."""
        s = self._s
        if activity is None:
            rows = await self._fetch(f"SELECT status, count(*) FROM {s}.workflows GROUP BY status")
        else:
            rows = await self._fetch(
                f"SELECT w.status, count(*) FROM {s}.workflow_activities a "
                f"JOIN {s}.workflows w ON w.seq = a.seq WHERE a.activity = %s GROUP BY w.status",
                (activity,),
            )
        counts: dict[str, int] = dict.fromkeys(WORKFLOW_STATUSES, 0)
        counts.update({status: int(n) for status, n in rows})
        return counts

    async def activities(self) -> builtins.list[str]:
        """Every activity name recorded, sorted."""
        rows = await self._fetch(
            f"SELECT DISTINCT activity FROM {self._s}.workflow_activities ORDER BY 1"
        )
        return [name for (name,) in rows]

    async def watch(self) -> AsyncIterator[WorkflowRecord]:
        """Yield changed records as their transactions commit (LISTEN/NOTIFY, with a slow poll)."""
        try:
            listener = await psycopg.AsyncConnection.connect(
                self.url, autocommit=True, connect_timeout=max(1, round(self.connect_timeout))
            )
        except psycopg.OperationalError as exc:
            raise StoreUnavailableError(f"cannot reach {self.describe()}: {exc}") from None
        try:
            await listener.execute(f'LISTEN "{self._channel}"')
            rows = await self._fetch(f"SELECT value FROM {self._s}.meta WHERE key = 'change_seq'")
            position = (int(rows[0][0]), _AFTER_EVERY_ROW)
            while True:
                changed = await self._fetch(
                    f"SELECT change_seq, seq, record FROM {self._s}.workflows "
                    "WHERE (change_seq, seq) > (%s, %s) ORDER BY change_seq, seq LIMIT 500",
                    position,
                )
                for change, seq, record in changed:
                    position = (change, seq)
                    yield WorkflowRecord.model_validate_json(record)
                if not changed:
                    async for _ in listener.notifies(timeout=self.poll_interval, stop_after=1):
                        pass
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(listener.close())
