"""Schema of the sqlite workflow store and its migrations (``PRAGMA user_version``)."""

from __future__ import annotations

import sqlite3

from ..errors import StoreUnavailableError

__all__ = ["SCHEMA_VERSION", "migrate", "schema_version"]

#: Migration N brings a database from version N-1 to N; never edit one that shipped.
_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE workflows (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        correlation_id TEXT NOT NULL UNIQUE,
        status TEXT NOT NULL,
        change_seq INTEGER NOT NULL,
        summary TEXT NOT NULL,
        record TEXT NOT NULL
    );
    CREATE INDEX workflows_by_status ON workflows (status, seq);
    CREATE INDEX workflows_by_change ON workflows (change_seq, seq);
    CREATE TABLE workflow_activities (
        activity TEXT NOT NULL,
        seq INTEGER NOT NULL,
        PRIMARY KEY (activity, seq)
    ) WITHOUT ROWID;
    CREATE TABLE events (
        id TEXT PRIMARY KEY,
        correlation_id TEXT NOT NULL,
        type TEXT NOT NULL,
        recorded_at TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
    INSERT INTO meta (key, value) VALUES ('change_seq', 0);
    """,
    """
    ALTER TABLE workflows ADD COLUMN trace_id TEXT;
    CREATE INDEX workflows_by_trace ON workflows (trace_id, seq);
    """,
    # 3: counters per status and per (activity, status), kept by record_many in the batch's
    # transaction so counts() reads them instead of counting rows; backfilled from the rows.
    """
    CREATE TABLE workflow_counts (
        status TEXT PRIMARY KEY,
        n INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE activity_counts (
        activity TEXT NOT NULL,
        status TEXT NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (activity, status)
    ) WITHOUT ROWID;
    INSERT INTO workflow_counts (status, n) SELECT status, count(*) FROM workflows GROUP BY status;
    INSERT INTO activity_counts (activity, status, n)
        SELECT a.activity, w.status, count(*) FROM workflow_activities a
        JOIN workflows w ON w.seq = a.seq GROUP BY a.activity, w.status;
    """,
)
SCHEMA_VERSION = len(_MIGRATIONS)


def schema_version(connection: sqlite3.Connection, where: str) -> int:
    """The database's schema version (0: empty); StoreUnavailableError if newer than ours."""
    (found,) = connection.execute("PRAGMA user_version").fetchone()
    if found > SCHEMA_VERSION:
        raise StoreUnavailableError(
            f"the workflow store at {where} has schema version {found}, newer than this "
            f"paigeant understands ({SCHEMA_VERSION}): upgrade paigeant-core"
        )
    return int(found)


def migrate(connection: sqlite3.Connection, where: str) -> int:
    """Bring the schema up to SCHEMA_VERSION in one transaction; return the version found.

    A database already at SCHEMA_VERSION is only read (no write lock is taken).
    """
    if schema_version(connection, where) == SCHEMA_VERSION:
        return SCHEMA_VERSION
    connection.execute("BEGIN IMMEDIATE")
    try:
        found = schema_version(connection, where)  # again, under the lock
        for version in range(found + 1, SCHEMA_VERSION + 1):
            for statement in _MIGRATIONS[version - 1].split(";"):
                if statement.strip():
                    connection.execute(statement)
        if found < SCHEMA_VERSION:
            connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        connection.execute("COMMIT")
        return int(found)
    except BaseException:
        connection.execute("ROLLBACK")
        raise
