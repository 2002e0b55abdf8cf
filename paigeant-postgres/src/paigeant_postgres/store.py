"""PostgresWorkflowStore: the production workflow store (psycopg 3, a connection pool).

Every batch is one transaction: new event ids are claimed in ``events`` (so an event is applied
once even when monitors compete for one queue), new workflows are numbered under a lock held to
commit (so ``list`` pages stay stable), the workflows' rows are locked in a fixed order, folded,
written, the status counters (``counts()`` reads them) are changed in key order, and the
change counter is bumped last, which orders commits by that counter so
``watch()`` never skips a change. ``watch()`` listens on a channel notified at each commit.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import os
import time
import zlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from paigeant import (
    WORKFLOW_STATUSES,
    ConfigurationError,
    CountDeltas,
    StoreUnavailableError,
    WorkflowEvent,
    WorkflowPage,
    WorkflowRecord,
    WorkflowStore,
    WorkflowSummary,
)

from ._listener import Listener
from ._schema import check_schema_name, migrate

__all__ = ["DEFAULT_SCHEMA", "DEFAULT_URL", "PostgresWorkflowStore"]

logger = logging.getLogger(__name__)

#: Where the store is when neither ``url`` nor ``PAIGEANT_STORE_URL`` says.
DEFAULT_URL = "postgresql://127.0.0.1:5432/paigeant"
#: The schema holding the store's tables.
DEFAULT_SCHEMA = "paigeant"

_AFTER_EVERY_ROW = 2**62
_DEADLOCK_RETRIES = 5
#: Errors of SQLSTATE class 40 (transaction rollback): the transaction may simply be run again.
_ROLLED_BACK = (
    psycopg.errors.DeadlockDetected,
    psycopg.errors.SerializationFailure,
    psycopg.errors.TransactionRollback,
)


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
        reconnect_timeout: float = 30.0,
        read_only: bool = False,
    ) -> None:
        """Use the database at ``url`` (default ``PAIGEANT_STORE_URL``, then DEFAULT_URL).

        Args:
            schema: schema for the tables (default ``PAIGEANT_POSTGRES_SCHEMA``, then ``paigeant``).
            min_size, max_size: bounds of the connection pool.
            connect_timeout: seconds ``connect()`` waits for the server before
                StoreUnavailableError.
            poll_interval: seconds ``watch()`` waits for a notification before looking anyway
                (and how often its quiet LISTEN connection is probed).
            reconnect_timeout: seconds ``watch()`` keeps reconnecting (its LISTEN connection,
                its queries) before StoreUnavailableError.
            read_only: open only to read (``WorkflowStore.read_only``): never create or
                migrate the schema (a role with SELECT only is enough), never write.
        """
        self.url = url or os.environ.get("PAIGEANT_STORE_URL", "").strip() or DEFAULT_URL
        _check_url(self.url)
        chosen = schema or os.environ.get("PAIGEANT_POSTGRES_SCHEMA", "").strip() or DEFAULT_SCHEMA
        self.schema = check_schema_name(chosen)
        self.min_size, self.max_size = min_size, max_size
        self.connect_timeout = connect_timeout
        self.poll_interval = poll_interval
        self.reconnect_timeout = reconnect_timeout
        self.read_only = read_only
        self._pool: AsyncConnectionPool[Any] | None = None
        self._listen: Listener | None = None
        self._s = f'"{self.schema}"'
        self._channel = f"paigeant_{self.schema}"[:63]
        self._numbering_lock = zlib.crc32(f"paigeant-store-numbering:{self.schema}".encode())

    @property
    def listener_name(self) -> str:
        """The ``application_name`` of the store's LISTEN connection (``pg_stat_activity``)."""
        return f"paigeant-watch:{self.schema}"

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
        """Reach the server (at most ``connect_timeout``), migrate the schema, open the pool.

        One connection is made first: a server that cannot be reached (or refuses the login)
        is one StoreUnavailableError at once, before any pool retries in the background.
        """
        if self._pool is not None:
            return
        timeout = max(1, round(self.connect_timeout))
        try:
            async with await psycopg.AsyncConnection.connect(
                self.url, connect_timeout=timeout
            ) as probe:
                await migrate(probe, self.schema, self.describe(), read_only=self.read_only)
        except psycopg.OperationalError as exc:
            raise StoreUnavailableError(
                f"cannot reach {self.describe()}: {_one_line(exc)} (is PostgreSQL running? set "
                "PAIGEANT_STORE_URL, e.g. postgresql://user@host:5432/dbname)"
            ) from None
        except psycopg.Error as exc:  # a privilege or a server setting stands in the way
            raise StoreUnavailableError(
                f"{self.describe()} cannot be used: {_one_line(exc)}"
            ) from None
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            self.url,
            min_size=self.min_size,
            max_size=self.max_size,
            open=False,
            timeout=self.connect_timeout,
            kwargs={"connect_timeout": timeout},
        )
        try:
            await pool.open(wait=True, timeout=self.connect_timeout)
        except (PoolTimeout, psycopg.OperationalError) as exc:
            await pool.close()
            raise StoreUnavailableError(
                f"cannot reach {self.describe()}: {_one_line(exc)}"
            ) from None
        except BaseException:
            await pool.close()
            raise
        self._pool = pool

    async def close(self) -> None:
        """Close the pool and the LISTEN connection (ending every watch()); idempotent."""
        listener, self._listen = self._listen, None
        if listener is not None:
            await listener.close()
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
        except _ROLLED_BACK:
            raise  # a deadlock or serialization failure: the caller retries the transaction
        except (PoolTimeout, psycopg.OperationalError) as exc:
            raise StoreUnavailableError(
                f"{self.describe()} is unavailable: {_one_line(exc)}"
            ) from exc

    # -- writing ---------------------------------------------------------------------------

    async def record_many(self, events: Sequence[WorkflowEvent]) -> int:
        """Record ``events`` in one transaction; return how many were new.

        Every lock is taken in one global order (event ids sorted, the new-workflow lock,
        workflow rows by correlation id, status counters by key, the change counter), so
        competing monitors do not
        deadlock; should PostgreSQL still abort the transaction (a deadlock or serialization
        failure), it is retried a few times, then StoreUnavailableError is raised (a monitor
        then holds the batch and tries again).
        """
        self.check_writable()
        if not events:
            return 0
        for attempt in range(1, _DEADLOCK_RETRIES + 1):
            try:
                return await self._record(events)
            except _ROLLED_BACK as exc:
                if attempt == _DEADLOCK_RETRIES:
                    raise StoreUnavailableError(
                        f"{self.describe()} aborted the batch {attempt} times ({exc}); try again"
                    ) from exc
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
        await self._insert_new(db, cids)
        cursor = await db.execute(
            f"SELECT seq, correlation_id, record FROM {s}.workflows "
            "WHERE correlation_id = ANY(%s) ORDER BY correlation_id FOR UPDATE",
            (cids,),
        )
        rows: builtins.list[tuple[int, str, str, str, str | None]] = []
        activities: builtins.list[tuple[str, int]] = []
        changes: builtins.list[tuple[int, str | None, str, set[str]]] = []
        for seq, cid, stored in await cursor.fetchall():
            batch = fresh[cid]
            before: str | None = None
            had: set[str] = set()
            if stored:
                record = WorkflowRecord.model_validate_json(stored)
                before, had = record.status, set(record.activities)
            else:
                record, batch = WorkflowRecord.from_event(batch[0]), batch[1:]
            for event in batch:
                record.apply(event)
            summary = record.summary().model_dump_json()
            rows.append((seq, record.status, summary, record.model_dump_json(), record.trace_id))
            activities += [(name, seq) for name in set(record.activities)]
            changes.append((seq, before, record.status, had | set(record.activities)))
        cursor = await db.execute(
            f"INSERT INTO {s}.workflow_activities (activity, seq) "
            "SELECT * FROM unnest(%s::text[], %s::bigint[]) ON CONFLICT DO NOTHING "
            "RETURNING activity, seq",
            ([a for a, _ in activities], [seq for _, seq in activities]),
        )
        added: dict[int, set[str]] = {}
        for name, seq in await cursor.fetchall():
            added.setdefault(seq, set()).add(name)
        deltas = CountDeltas()
        for seq, before, after, names in changes:
            new = added.get(seq, set())
            deltas.workflow(before, after, names - new, new)
        await self._count(db, deltas)
        cursor = await db.execute(
            f"UPDATE {s}.meta SET value = value + 1 WHERE key = 'change_seq' RETURNING value"
        )
        change = (await cursor.fetchone() or (0,))[0]
        await db.execute(
            f"UPDATE {s}.workflows AS w SET status = v.status, change_seq = %s, "
            "summary = v.summary, record = v.record, trace_id = v.trace_id "
            "FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[]) "
            "AS v(seq, status, summary, record, trace_id) WHERE w.seq = v.seq",
            (change, *(builtins.list(column) for column in zip(*rows, strict=True))),
        )
        await db.execute("SELECT pg_notify(%s, %s)", (self._channel, str(change)))

    async def _count(self, db: psycopg.AsyncConnection[Any], deltas: CountDeltas) -> None:
        """Apply a batch's counter changes: one upsert per counter, in sorted key order.

        Every monitor locks the counters it changes in that order (after the workflow rows,
        before the change counter), so competing monitors wait on each other but never deadlock.
        """
        s = self._s
        statuses = deltas.statuses()
        if statuses:
            await db.execute(
                f"INSERT INTO {s}.workflow_counts AS c (status, n) "
                "SELECT status, n FROM unnest(%s::text[], %s::bigint[]) WITH ORDINALITY "
                "AS t(status, n, i) ORDER BY i "
                "ON CONFLICT (status) DO UPDATE SET n = c.n + EXCLUDED.n",
                ([status for status, _ in statuses], [n for _, n in statuses]),
            )
        changes = deltas.activities()
        if changes:
            await db.execute(
                f"INSERT INTO {s}.activity_counts AS c (activity, status, n) "
                "SELECT activity, status, n FROM "
                "unnest(%s::text[], %s::text[], %s::bigint[]) WITH ORDINALITY "
                "AS t(activity, status, n, i) ORDER BY i "
                "ON CONFLICT (activity, status) DO UPDATE SET n = c.n + EXCLUDED.n",
                tuple(builtins.list(column) for column in zip(*changes, strict=True)),
            )

    async def _insert_new(self, db: psycopg.AsyncConnection[Any], cids: builtins.list[str]) -> None:
        """Create the rows of workflows not recorded yet, numbered (``seq``) in arrival order.

        ``seq`` is the order ``list`` pages in. The numbers are drawn under a transaction lock
        held until commit, so transactions that create workflows commit in the order of their
        numbers and a page already read never gains a row (competing monitors included). The
        rows are inserted in correlation-id order, the lock order every monitor uses.
        """
        s = self._s
        cursor = await db.execute(
            f"SELECT correlation_id FROM {s}.workflows WHERE correlation_id = ANY(%s)", (cids,)
        )
        known = {row[0] for row in await cursor.fetchall()}
        new = [cid for cid in cids if cid not in known]
        if not new:
            return
        await db.execute("SELECT pg_advisory_xact_lock(%s)", (self._numbering_lock,))
        cursor = await db.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'seq')) FROM generate_series(1, %s)",
            (f"{s}.workflows", len(new)),
        )
        numbers = sorted(row[0] for row in await cursor.fetchall())
        await db.execute(
            f"INSERT INTO {s}.workflows (seq, correlation_id, status, change_seq, summary, record) "
            "OVERRIDING SYSTEM VALUE SELECT n, c, 'running', 0, '', '' "
            "FROM unnest(%s::bigint[], %s::text[]) AS t(n, c) "
            "ORDER BY c ON CONFLICT (correlation_id) DO NOTHING",
            (numbers, new),
        )

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

    async def get_by_trace(self, trace_id: str) -> WorkflowRecord | None:
        """The newest record with ``trace_id``, or None."""
        rows = await self._fetch(
            f"SELECT record FROM {self._s}.workflows WHERE trace_id = %s ORDER BY seq DESC LIMIT 1",
            (trace_id,),
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
        """Workflows per status (every status listed), read from the counters ``record_many`` keeps."""
        s = self._s
        if activity is None:
            rows = await self._fetch(f"SELECT status, n FROM {s}.workflow_counts")
        else:
            rows = await self._fetch(
                f"SELECT status, n FROM {s}.activity_counts WHERE activity = %s", (activity,)
            )
        counts: dict[str, int] = dict.fromkeys(WORKFLOW_STATUSES, 0)
        counts.update({status: int(n) for status, n in rows})
        return counts

    async def activities(self) -> builtins.list[str]:
        """Every activity name recorded, sorted (a loose index scan: one seek per name)."""
        table = f"{self._s}.workflow_activities"
        rows = await self._fetch(
            "WITH RECURSIVE names(name) AS ("
            f" SELECT (SELECT min(activity) FROM {table})"
            f" UNION ALL SELECT (SELECT min(activity) FROM {table} WHERE activity > name)"
            " FROM names WHERE name IS NOT NULL"
            ") SELECT name FROM names WHERE name IS NOT NULL"
        )
        return [name for (name,) in rows]

    async def watch(self) -> AsyncIterator[WorkflowRecord]:
        """Yield changed records as their transactions commit (LISTEN/NOTIFY, with a slow poll).

        The store's watchers share one LISTEN connection. Should it (or the server) go away,
        it is reconnected with backoff and every watcher looks again from where it was, so no
        change is missed; StoreUnavailableError only after ``reconnect_timeout`` seconds of
        failing to listen again or to query.
        """
        listener = self._listener()
        changed = listener.subscribe()
        try:
            await listener.listening()  # LISTEN first, then the starting point: nothing missed
            rows = await self._watch_fetch(
                f"SELECT value FROM {self._s}.meta WHERE key = 'change_seq'", ()
            )
            position = (int(rows[0][0]), _AFTER_EVERY_ROW)
            while True:
                changed.clear()
                found = await self._watch_fetch(
                    f"SELECT change_seq, seq, record FROM {self._s}.workflows "
                    "WHERE (change_seq, seq) > (%s, %s) ORDER BY change_seq, seq LIMIT 500",
                    position,
                )
                for change, seq, record in found:
                    position = (change, seq)
                    yield WorkflowRecord.model_validate_json(record)
                if not found:
                    listener.check()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(changed.wait(), self.poll_interval)
        finally:
            await asyncio.shield(listener.unsubscribe(changed))

    def _listener(self) -> Listener:
        if self._pool is None:
            raise RuntimeError("the workflow store is not connected: call `await store.connect()`")
        if self._listen is None:
            self._listen = Listener(
                self._connect_listener,
                self._channel,
                give_up_after=self.reconnect_timeout,
                check_every=self.poll_interval,
                where=self.describe(),
            )
        return self._listen

    async def _connect_listener(self) -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(
            self.url,
            autocommit=True,
            connect_timeout=max(1, round(self.connect_timeout)),
            application_name=self.listener_name,
        )

    async def _watch_fetch(self, sql: str, params: Sequence[Any]) -> builtins.list[Any]:
        """``_fetch`` for watch(): retried with backoff for up to ``reconnect_timeout`` seconds."""
        deadline = time.monotonic() + self.reconnect_timeout
        backoff = 0.1
        while True:
            try:
                return await self._fetch(sql, params)
            except StoreUnavailableError as exc:
                if time.monotonic() + backoff > deadline:
                    raise StoreUnavailableError(
                        f"watch() could not read {self.describe()} for "
                        f"{self.reconnect_timeout:g}s: {exc}"
                    ) from exc
                logger.warning("watch() could not read (%s); retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)


def _check_url(url: str) -> None:
    """ConfigurationError for a URL libpq cannot use, before anything tries to connect."""
    hint = "use postgresql://user@host:5432/dbname or a key=value conninfo string"
    try:
        info = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise ConfigurationError(
            f"invalid PostgreSQL URL for the postgres workflow store: {_one_line(exc)}; {hint}"
        ) from None
    for port in str(info.get("port", "")).split(","):
        if port and not port.strip().isdigit():
            raise ConfigurationError(
                f"invalid PostgreSQL URL for the postgres workflow store: port {port!r} is not "
                f"a number; {hint}"
            )


def _one_line(exc: BaseException) -> str:
    """An error's message on one line (libpq's span several)."""
    return " ".join(str(exc).split())
