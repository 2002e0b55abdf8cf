"""The built-in workflow stores pass the store conformance suite."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from paigeant import MemoryWorkflowStore, SqliteWorkflowStore, WorkflowStore
from paigeant.testing import WorkflowStoreConformance


class TestMemoryStore(WorkflowStoreConformance):
    def make_store(self) -> WorkflowStore:
        return MemoryWorkflowStore()


class TestSqliteStore(WorkflowStoreConformance):
    @pytest.fixture(autouse=True)
    def _database(self, tmp_path: Path) -> None:
        self.path = tmp_path / "store" / "paigeant.db"

    def make_store(self) -> WorkflowStore:
        return SqliteWorkflowStore(url=str(self.path))

    async def stored_text(self, store: WorkflowStore) -> str | None:
        with sqlite3.connect(self.path) as db:  # the WAL is read too: everything committed
            return "\n".join(db.iterdump())
