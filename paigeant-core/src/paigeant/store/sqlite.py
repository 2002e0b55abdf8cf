"""The ``sqlite`` workflow store: the embedded default, one file shared by every local process.

The file is ``PAIGEANT_STORE_URL`` (a path or ``sqlite:///path``), else
``$PAIGEANT_HOME/paigeant.db``. It runs in WAL mode, so any number of processes read while
monitors write (writers take turns); the schema is versioned and migrated on connect. The
standard library's ``sqlite3`` runs on a thread of its own, off the event loop.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from ..errors import ConfigurationError, StoreUnavailableError
from ..settings import env_str, paigeant_home
from ..workflow.events import WorkflowEvent
from ._sqlite_schema import SCHEMA_VERSION, migrate, schema_version
from .base import WorkflowPage, WorkflowStore
from .counters import CountDeltas
from .records import STATUSES, WorkflowRecord, WorkflowSummary

__all__ = ["SqliteWorkflowStore", "default_sqlite_path"]

T = TypeVar("T")

_SYNCHRONOUS = ("off", "normal", "full", "extra")
_AFTER_EVERY_ROW = 2**62
#: A loose index scan: from each name, seek the next one (DISTINCT would read every row).
_DISTINCT_ACTIVITIES = """
WITH RECURSIVE names(name) AS (
    SELECT (SELECT min(activity) FROM workflow_activities)
    UNION ALL
    SELECT (SELECT min(activity) FROM workflow_activities WHERE activity > name)
    FROM names WHERE name IS NOT NULL
)
SELECT name FROM names WHERE name IS NOT NULL
"""


def default_sqlite_path(url: str | None = None) -> Path:
    """The store file: ``url``, else ``PAIGEANT_STORE_URL``, else ``$PAIGEANT_HOME/paigeant.db``."""
    raw = url or env_str("PAIGEANT_STORE_URL")
    if not raw:
        return paigeant_home() / "paigeant.db"
    if raw.startswith("sqlite:///"):
        return Path(raw[len("sqlite://") :])
    if raw.startswith("sqlite:"):
        return Path(raw[len("sqlite:") :])
    if "://" in raw:
        raise ConfigurationError(
            f"the sqlite workflow store takes a file path or sqlite:///path, got {raw!r} "
            "(for another store, set PAIGEANT_STORE too, e.g. PAIGEANT_STORE=postgres)"
        )
    return Path(raw).expanduser()


class SqliteWorkflowStore(WorkflowStore):
    """A WorkflowStore in one sqlite file (WAL): shared by the monitor, the CLI and the dashboard."""

    name = "sqlite"

    def __init__(
        self,
        *,
        url: str | None = None,
        poll_interval: float = 0.25,
        busy_timeout: float = 30.0,
        synchronous: str = "full",
        read_only: bool = False,
    ) -> None:
        """Open the file ``url`` (see ``default_sqlite_path``) when connected.

        Args:
            url: a path or ``sqlite:///path``; default ``PAIGEANT_STORE_URL``, then
                ``$PAIGEANT_HOME/paigeant.db``.
            poll_interval: seconds between checks for changes made by other processes (watch).
            busy_timeout: seconds to wait for another writer before failing.
            synchronous: sqlite's ``synchronous`` level; ``full`` survives power loss.
            read_only: open only to read (see ``WorkflowStore.read_only``): never create,
                migrate (unless behind and writable) or write.
        """
        if synchronous.lower() not in _SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {', '.join(_SYNCHRONOUS)}")
        self.path = default_sqlite_path(url)
        self.poll_interval = poll_interval
        self.busy_timeout = busy_timeout
        self.synchronous = synchronous.lower()
        self.read_only = read_only
        self._connection: sqlite3.Connection | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._watchers: set[asyncio.Event] = set()

    def __repr__(self) -> str:
        return f"SqliteWorkflowStore({str(self.path)!r})"

    def describe(self) -> str:
        """``the sqlite workflow store at <path>``."""
        return f"the sqlite workflow store at {self.path}"

    # -- connection ------------------------------------------------------------------------

    async def connect(self) -> None:
        """Open the file: a writer creates and migrates it, a reader (``read_only``) only reads."""
        if self._connection is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="paigeant-sqlite")
        try:
            self._connection = await self._run(self._open_reader if self.read_only else self._open)
        except BaseException:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise

    def _open(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(
                self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreUnavailableError(
                f"cannot open the sqlite workflow store at {self.path}: {exc} "
                "(set PAIGEANT_STORE_URL or PAIGEANT_HOME to a writable place)"
            ) from None
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(f"PRAGMA synchronous={self.synchronous}")
            connection.execute("PRAGMA foreign_keys=ON")
            migrate(connection, str(self.path))
        except sqlite3.DatabaseError as exc:
            connection.close()
            raise StoreUnavailableError(
                f"the sqlite workflow store at {self.path} cannot be used: {exc}"
            ) from None
        except BaseException:
            connection.close()
            raise
        return connection

    def _open_reader(self) -> sqlite3.Connection:
        """Open the existing file read-only (``mode=ro``); migrate it only if behind and writable.

        Nothing is created. A file no monitor has open, in a directory this process may not
        write (so sqlite cannot add its shared-memory file), is read as immutable: changes made
        after it was opened are not seen.
        """
        if not self.path.is_file():
            raise StoreUnavailableError(
                f"no workflow store at {self.path}: run a monitor (paigeant monitor) or the demo "
                "(paigeant demo) first, or set PAIGEANT_STORE_URL (or PAIGEANT_HOME) to where one is"
            )
        try:
            connection, found = self._read_only_connection()
            if found < SCHEMA_VERSION:
                connection.close()
                self._migrate_for_readers(found)
                connection, found = self._read_only_connection()
        except sqlite3.DatabaseError as exc:
            raise StoreUnavailableError(
                f"cannot read the sqlite workflow store at {self.path}: {exc}"
            ) from None
        return connection

    def _read_only_connection(self) -> tuple[sqlite3.Connection, int]:
        uri = self.path.resolve().as_uri()
        connection = self._connect_uri(f"{uri}?mode=ro")
        try:
            return connection, schema_version(connection, str(self.path))
        except sqlite3.OperationalError:
            connection.close()
            wal = self.path.with_name(self.path.name + "-wal")
            if wal.exists():  # a writer has it open and we cannot share its index: give up
                raise
        connection = self._connect_uri(f"{uri}?mode=ro&immutable=1")
        try:
            return connection, schema_version(connection, str(self.path))
        except BaseException:
            connection.close()
            raise

    def _connect_uri(self, uri: str) -> sqlite3.Connection:
        connection = sqlite3.connect(
            uri, uri=True, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
        )
        if "mode=ro" in uri:
            connection.execute("PRAGMA query_only=ON")
        return connection

    def _migrate_for_readers(self, found: int) -> None:
        try:
            writer = self._connect_uri(f"{self.path.resolve().as_uri()}?mode=rw")
            try:
                migrate(writer, str(self.path))
            finally:
                writer.close()
        except sqlite3.OperationalError as exc:
            raise StoreUnavailableError(
                f"the sqlite workflow store at {self.path} has schema version {found}, older "
                f"than this paigeant's ({SCHEMA_VERSION}), and cannot be migrated from here "
                f"({exc}): run `paigeant monitor` once with write access to it"
            ) from None

    async def close(self) -> None:
        """Close the file; idempotent."""
        connection, executor = self._connection, self._executor
        self._connection, self._executor = None, None
        if executor is None:
            return
        if connection is not None:
            await asyncio.get_running_loop().run_in_executor(executor, connection.close)
        executor.shutdown(wait=True)

    async def _run(self, function: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise RuntimeError("the workflow store is not connected: call `await store.connect()`")
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            raise RuntimeError("the workflow store is not connected: call `await store.connect()`")
        return self._connection

    # -- writing ---------------------------------------------------------------------------

    async def record_many(self, events: Sequence[WorkflowEvent]) -> int:
        """Record ``events`` in one transaction (writers in other processes wait their turn)."""
        self.check_writable()
        if not events:
            return 0
        try:
            new = await self._run(self._record_many, list(events))
        except sqlite3.OperationalError as exc:  # locked past busy_timeout, disk full, I/O
            raise StoreUnavailableError(
                f"the sqlite workflow store at {self.path} could not record: {exc}"
            ) from exc
        if new:
            for changed in self._watchers:
                changed.set()
        return new

    def _record_many(self, events: builtins.list[WorkflowEvent]) -> int:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            fresh: dict[str, builtins.list[WorkflowEvent]] = {}
            for event in events:
                inserted = db.execute(
                    "INSERT OR IGNORE INTO events (id, correlation_id, type, recorded_at) "
                    "VALUES (?, ?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
                    (self.event_key(event), event.correlation_id, str(event.type)),
                ).rowcount
                if inserted:
                    fresh.setdefault(event.correlation_id, []).append(event)
            if fresh:
                (change,) = db.execute(
                    "UPDATE meta SET value = value + 1 WHERE key = 'change_seq' RETURNING value"
                ).fetchone()
                deltas = CountDeltas()
                for cid, batch in fresh.items():
                    self._fold(db, cid, batch, change, deltas)
                self._count(db, deltas)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return sum(len(batch) for batch in fresh.values())

    @staticmethod
    def _fold(
        db: sqlite3.Connection,
        cid: str,
        events: builtins.list[WorkflowEvent],
        change: int,
        deltas: CountDeltas,
    ) -> None:
        row = db.execute("SELECT seq, record FROM workflows WHERE correlation_id = ?", (cid,))
        found = row.fetchone()
        if found is None:
            record = WorkflowRecord.from_event(events[0])
            events = events[1:]
            before: str | None = None
            had: set[str] = set()
        else:
            record = WorkflowRecord.model_validate_json(found[1])
            before, had = record.status, set(record.activities)
        for event in events:
            record.apply(event)
        values = (
            record.status,
            change,
            record.summary().model_dump_json(),
            record.model_dump_json(),
            record.trace_id,
        )
        if found is None:
            (seq,) = db.execute(
                "INSERT INTO workflows "
                "(status, change_seq, summary, record, trace_id, correlation_id) "
                "VALUES (?, ?, ?, ?, ?, ?) RETURNING seq",
                (*values, cid),
            ).fetchone()
        else:
            seq = found[0]
            db.execute(
                "UPDATE workflows SET status = ?, change_seq = ?, summary = ?, record = ?, "
                "trace_id = ? WHERE seq = ?",
                (*values, seq),
            )
        names = had | set(record.activities)
        added = {
            name
            for name in set(record.activities)
            if db.execute(
                "INSERT OR IGNORE INTO workflow_activities (activity, seq) VALUES (?, ?)",
                (name, seq),
            ).rowcount
        }
        deltas.workflow(before, record.status, names - added, added)

    @staticmethod
    def _count(db: sqlite3.Connection, deltas: CountDeltas) -> None:
        """Apply a batch's counter changes: one upsert per counter, in sorted key order."""
        db.executemany(
            "INSERT INTO workflow_counts (status, n) VALUES (?, ?) "
            "ON CONFLICT (status) DO UPDATE SET n = n + excluded.n",
            deltas.statuses(),
        )
        db.executemany(
            "INSERT INTO activity_counts (activity, status, n) VALUES (?, ?, ?) "
            "ON CONFLICT (activity, status) DO UPDATE SET n = n + excluded.n",
            deltas.activities(),
        )

    # -- reading ---------------------------------------------------------------------------

    async def get(self, correlation_id: str) -> WorkflowRecord | None:
        """The record of ``correlation_id``, or None."""
        row = await self._run(
            self._fetchone,
            "SELECT record FROM workflows WHERE correlation_id = ?",
            (correlation_id,),
        )
        return None if row is None else WorkflowRecord.model_validate_json(row[0])

    async def get_by_trace(self, trace_id: str) -> WorkflowRecord | None:
        """The newest record with ``trace_id``, or None."""
        row = await self._run(
            self._fetchone,
            "SELECT record FROM workflows WHERE trace_id = ? ORDER BY seq DESC LIMIT 1",
            (trace_id,),
        )
        return None if row is None else WorkflowRecord.model_validate_json(row[0])

    def _fetchone(self, sql: str, params: tuple[Any, ...]) -> Any:
        return self._db().execute(sql, params).fetchone()

    def _fetchall(self, sql: str, params: tuple[Any, ...]) -> builtins.list[Any]:
        return self._db().execute(sql, params).fetchall()

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
        where, params = self._filters(status, activity, before)
        if activity is None:
            sql = f"SELECT w.seq, w.summary FROM workflows w {where} ORDER BY w.seq DESC LIMIT ?"
        else:
            sql = (
                "SELECT w.seq, w.summary FROM workflow_activities a "
                f"JOIN workflows w ON w.seq = a.seq {where} ORDER BY a.seq DESC LIMIT ?"
            )
        rows = await self._run(self._fetchall, sql, (*params, limit + 1))
        page = rows[:limit]
        return WorkflowPage(
            items=[WorkflowSummary.model_validate_json(summary) for _, summary in page],
            next_cursor=self.encode_cursor(page[-1][0]) if len(rows) > limit else None,
        )

    @staticmethod
    def _filters(
        status: str | None, activity: str | None, before: int | None
    ) -> tuple[str, builtins.list[Any]]:
        clauses: builtins.list[str] = []
        params: builtins.list[Any] = []
        if activity is not None:
            clauses.append("a.activity = ?")
            params.append(activity)
        if status is not None:
            clauses.append("w.status = ?")
            params.append(status)
        if before is not None:
            clauses.append(f"{'a' if activity is not None else 'w'}.seq < ?")
            params.append(before)
        return ("WHERE " + " AND ".join(clauses)) if clauses else "", params

    async def counts(self, *, activity: str | None = None) -> dict[str, int]:
        """Workflows per status (every status listed), read from the counters ``record_many`` keeps."""
        params: tuple[str, ...] = ()
        if activity is None:
            sql = "SELECT status, n FROM workflow_counts"
        else:
            sql = "SELECT status, n FROM activity_counts WHERE activity = ?"
            params = (activity,)
        counts: dict[str, int] = dict.fromkeys(STATUSES, 0)
        counts.update(dict(await self._run(self._fetchall, sql, params)))
        return counts

    async def activities(self) -> builtins.list[str]:
        """Every activity name recorded, sorted (one index seek per name, not a scan)."""
        rows = await self._run(self._fetchall, _DISTINCT_ACTIVITIES, ())
        return [name for (name,) in rows]

    async def watch(self) -> AsyncIterator[WorkflowRecord]:
        """Yield changed records: at once for this process's writes, within ``poll_interval`` for others'."""
        changed = asyncio.Event()
        self._watchers.add(changed)
        try:
            (change,) = await self._run(
                self._fetchone, "SELECT value FROM meta WHERE key = 'change_seq'", ()
            )
            position = (change, _AFTER_EVERY_ROW)
            while True:
                changed.clear()
                rows = await self._run(
                    self._fetchall,
                    "SELECT change_seq, seq, record FROM workflows "
                    "WHERE (change_seq, seq) > (?, ?) ORDER BY change_seq, seq LIMIT 500",
                    position,
                )
                for change, seq, record in rows:
                    position = (change, seq)
                    yield WorkflowRecord.model_validate_json(record)
                if not rows:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(changed.wait(), self.poll_interval)
        finally:
            self._watchers.discard(changed)
