"""PostgresWorkflowStore passes the workflow store conformance suite on the real server."""

from __future__ import annotations

import psycopg
import pytest

from paigeant import WorkflowStore
from paigeant.testing import WorkflowStoreConformance
from paigeant_postgres import PostgresWorkflowStore


class TestPostgresStore(WorkflowStoreConformance):
    @pytest.fixture(autouse=True)
    def _server(self, postgres_url: str, schema: str) -> None:
        self.url, self.schema = postgres_url, schema

    def make_store(self) -> WorkflowStore:
        return PostgresWorkflowStore(url=self.url, schema=self.schema)

    async def stored_text(self, store: WorkflowStore) -> str | None:
        tables = ("workflows", "workflow_activities", "events", "meta")
        async with await psycopg.AsyncConnection.connect(self.url) as connection:
            dump = []
            for table in tables:
                cursor = await connection.execute(f'SELECT t::text FROM "{self.schema}".{table} t')
                dump += [row[0] for row in await cursor.fetchall()]
        return "\n".join(dump)
