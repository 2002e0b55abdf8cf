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


async def migrate(connection: AsyncConnection[Any], schema: str, where: str) -> int:
    """Create or upgrade ``schema`` to SCHEMA_VERSION, one connector at a time; return the version found."""
    quoted = f'"{check_schema_name(schema)}"'
    lock = zlib.crc32(f"paigeant-store:{schema}".encode())
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock(%s)", (lock,))
        await connection.execute(f"CREATE SCHEMA IF NOT EXISTS {quoted}")
        await connection.execute(
            f"CREATE TABLE IF NOT EXISTS {quoted}.schema_version (version INTEGER NOT NULL)"
        )
        cursor = await connection.execute(f"SELECT max(version) FROM {quoted}.schema_version")
        row = await cursor.fetchone()
        found = int(row[0]) if row and row[0] is not None else 0
        if found > SCHEMA_VERSION:
            raise StoreUnavailableError(
                f"the workflow store at {where} has schema version {found}, newer than this "
                f"paigeant-postgres understands ({SCHEMA_VERSION}): upgrade paigeant-postgres"
            )
        for version in range(found + 1, SCHEMA_VERSION + 1):
            for statement in _MIGRATIONS[version - 1]:
                await connection.execute(statement.format(s=quoted))
            await connection.execute(
                f"INSERT INTO {quoted}.schema_version (version) VALUES (%s)", (version,)
            )
    return found
