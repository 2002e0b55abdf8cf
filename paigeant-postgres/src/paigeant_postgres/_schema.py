"""Schema of the PostgreSQL workflow store and its migrations (table ``schema_version``)."""

from __future__ import annotations

import re
import zlib
from typing import Any

from psycopg import AsyncConnection

from paigeant import StoreUnavailableError

__all__ = ["SCHEMA_VERSION", "check_schema_name", "migrate"]

_NAME = re.compile(r"[a-z_][a-z0-9_]{0,39}")

#: Migration N brings a schema from version N-1 to N; ``{s}`` is the quoted schema name.
#: Never edit one that shipped: add the next.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE {s}.workflows (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            correlation_id TEXT NOT NULL UNIQUE,
            status TEXT NOT NULL,
            change_seq BIGINT NOT NULL,
            summary TEXT NOT NULL,
            record TEXT NOT NULL
        )""",
        "CREATE INDEX workflows_by_status ON {s}.workflows (status, seq)",
        "CREATE INDEX workflows_by_change ON {s}.workflows (change_seq, seq)",
        """CREATE TABLE {s}.workflow_activities (
            activity TEXT NOT NULL,
            seq BIGINT NOT NULL,
            PRIMARY KEY (activity, seq)
        )""",
        """CREATE TABLE {s}.events (
            id TEXT PRIMARY KEY,
            correlation_id TEXT NOT NULL,
            type TEXT NOT NULL,
            recorded_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )""",
        "CREATE TABLE {s}.meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL)",
        "INSERT INTO {s}.meta (key, value) VALUES ('change_seq', 0)",
    ),
    (
        "ALTER TABLE {s}.workflows ADD COLUMN trace_id TEXT",
        "CREATE INDEX workflows_by_trace ON {s}.workflows (trace_id, seq)",
    ),
    # 3: counters per status and per (activity, status), kept by record_many in the batch's
    # transaction so counts() reads them instead of counting rows; backfilled from the rows
    # under a lock that keeps writers out until the migration commits.
    (
        "LOCK TABLE {s}.workflows, {s}.workflow_activities IN SHARE MODE",
        """CREATE TABLE {s}.workflow_counts (
            status TEXT PRIMARY KEY,
            n BIGINT NOT NULL
        )""",
        """CREATE TABLE {s}.activity_counts (
            activity TEXT NOT NULL,
            status TEXT NOT NULL,
            n BIGINT NOT NULL,
            PRIMARY KEY (activity, status)
        )""",
        """INSERT INTO {s}.workflow_counts (status, n)
            SELECT status, count(*) FROM {s}.workflows GROUP BY status""",
        """INSERT INTO {s}.activity_counts (activity, status, n)
            SELECT a.activity, w.status, count(*) FROM {s}.workflow_activities a
            JOIN {s}.workflows w ON w.seq = a.seq GROUP BY a.activity, w.status""",
    ),
)
SCHEMA_VERSION = len(_MIGRATIONS)


def check_schema_name(schema: str) -> str:
    """Return ``schema`` if it is a plain lower-case identifier (up to 40 characters)."""
    if not _NAME.fullmatch(schema):
        raise ValueError(
            f"invalid schema name {schema!r}: use lower-case letters, digits and '_' "
            "(at most 40 characters, not starting with a digit)"
        )
    return schema


async def migrate(
    connection: AsyncConnection[Any], schema: str, where: str, *, read_only: bool = False
) -> int:
    """Create or upgrade ``schema`` to SCHEMA_VERSION, one connector at a time; return the version found.

    The version is read first, without a lock: a schema already at SCHEMA_VERSION is only read,
    so a role that may only read (or only read and write rows) connects. ``read_only``: never
    create or migrate; a schema that is missing or behind is StoreUnavailableError.
    """
    quoted = f'"{check_schema_name(schema)}"'
    async with connection.transaction():  # a transaction of its own: the connection goes back idle
        found = await _version(connection, schema, quoted, where)
    if found == SCHEMA_VERSION:
        return found
    if read_only:
        if found == 0:
            raise StoreUnavailableError(
                f"no workflow store at {where}: run a monitor (paigeant monitor) or the demo "
                "first, or set PAIGEANT_STORE_URL and PAIGEANT_POSTGRES_SCHEMA to where one is"
            )
        raise StoreUnavailableError(
            f"the workflow store at {where} has schema version {found}, older than this "
            f"paigeant-postgres's ({SCHEMA_VERSION}): run `paigeant monitor` once to migrate it"
        )
    lock = zlib.crc32(f"paigeant-store:{schema}".encode())
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock(%s)", (lock,))
        cursor = await connection.execute(
            "SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)
        )
        if await cursor.fetchone() is None:  # CREATE SCHEMA needs a privilege readers lack
            await connection.execute(f"CREATE SCHEMA IF NOT EXISTS {quoted}")
        await connection.execute(
            f"CREATE TABLE IF NOT EXISTS {quoted}.schema_version (version INTEGER NOT NULL)"
        )
        found = await _version(connection, schema, quoted, where)  # again, under the lock
        for version in range(found + 1, SCHEMA_VERSION + 1):
            for statement in _MIGRATIONS[version - 1]:
                await connection.execute(statement.format(s=quoted))
            await connection.execute(
                f"INSERT INTO {quoted}.schema_version (version) VALUES (%s)", (version,)
            )
    return found


async def _version(connection: AsyncConnection[Any], schema: str, quoted: str, where: str) -> int:
    """The schema's version (0: no store there); StoreUnavailableError if newer than ours."""
    cursor = await connection.execute(
        "SELECT to_regclass(%s) IS NOT NULL", (f"{quoted}.schema_version",)
    )
    row = await cursor.fetchone()
    if not row or not row[0]:
        found = 0
    else:
        cursor = await connection.execute(f"SELECT max(version) FROM {quoted}.schema_version")
        row = await cursor.fetchone()
        found = int(row[0]) if row and row[0] is not None else 0
    if found > SCHEMA_VERSION:
        raise StoreUnavailableError(
            f"the workflow store at {where} has schema version {found}, newer than this "
            f"paigeant-postgres understands ({SCHEMA_VERSION}): upgrade paigeant-postgres"
        )
    return found
