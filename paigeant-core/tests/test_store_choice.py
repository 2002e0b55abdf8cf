"""Choosing and locating the workflow store; the sqlite file shared by several processes."""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from paigeant import (
    MemoryWorkflowStore,
    PluginNotFoundError,
    SqliteWorkflowStore,
    StoreUnavailableError,
    get_workflow_store,
    plugins,
)
from paigeant.errors import ConfigurationError
from paigeant.settings import paigeant_home
from paigeant.store.sqlite import default_sqlite_path
from paigeant.testing import WorkflowEvents


@pytest.fixture(autouse=True)
def _only_builtin_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.metadata, "distributions", list)
    plugins.reset_plugins()


def test_the_default_is_sqlite_in_paigeant_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PAIGEANT_HOME", str(tmp_path / "home"))
    store = get_workflow_store()
    assert isinstance(store, SqliteWorkflowStore)
    assert store.path == tmp_path / "home" / "paigeant.db"


def test_paigeant_store_and_the_argument_choose(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAIGEANT_STORE", "memory")
    assert isinstance(get_workflow_store(), MemoryWorkflowStore)
    assert isinstance(get_workflow_store("sqlite"), SqliteWorkflowStore)


def test_an_unknown_store_names_the_available_ones_and_the_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PAIGEANT_STORE", "postgres")
    with pytest.raises(PluginNotFoundError) as caught:
        get_workflow_store()
    message = str(caught.value)
    assert "unknown workflow store 'postgres' (from PAIGEANT_STORE)" in message
    assert "available: memory, sqlite" in message and "pip install paigeant-postgres" in message


@pytest.mark.parametrize(
    ("url", "expected"),
    [("/srv/x.db", "/srv/x.db"), ("sqlite:///srv/y.db", "/srv/y.db"), ("sqlite:rel.db", "rel.db")],
)
def test_paigeant_store_url_names_the_file(
    monkeypatch: pytest.MonkeyPatch, url: str, expected: str
) -> None:
    monkeypatch.setenv("PAIGEANT_STORE_URL", url)
    assert default_sqlite_path() == Path(expected)
    assert SqliteWorkflowStore(url="/explicit.db").path == Path("/explicit.db"), "the argument wins"


def test_a_url_for_another_store_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAIGEANT_STORE_URL", "postgresql://db/x")
    with pytest.raises(ConfigurationError, match="set PAIGEANT_STORE too"):
        get_workflow_store("sqlite")


def test_paigeant_home_defaults_to_the_user_data_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("PAIGEANT_HOME")
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert paigeant_home() == tmp_path / "data" / "paigeant"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert paigeant_home() == tmp_path / ".local" / "share" / "paigeant"
    monkeypatch.setattr(sys, "platform", "darwin")
    assert paigeant_home() == tmp_path / "Library" / "Application Support" / "paigeant"


async def test_the_schema_is_versioned_and_a_newer_one_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    async with SqliteWorkflowStore(url=str(path)):
        pass
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (1,)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        db.execute("PRAGMA user_version = 7")
    with pytest.raises(StoreUnavailableError, match="schema version 7, newer than this paigeant"):
        await SqliteWorkflowStore(url=str(path)).connect()


async def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreUnavailableError, match="cannot be used"):
        await SqliteWorkflowStore(url=str(path)).connect()


READER = """
import asyncio, sys
from paigeant import SqliteWorkflowStore
async def main():
    seen = 0
    async with SqliteWorkflowStore(url=sys.argv[1]) as store:
        for _ in range(40):
            page = await store.list(limit=1000)
            seen = max(seen, len(page.items))
            await asyncio.sleep(0.01)
    print(seen)
asyncio.run(main())
"""


async def test_processes_read_while_a_monitor_writes(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    async with SqliteWorkflowStore(url=path) as writer:
        readers = [
            await asyncio.create_subprocess_exec(
                sys.executable, "-c", READER, path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            for _ in range(3)
        ]
        for _ in range(60):
            await writer.record_many([WorkflowEvents().dispatched(["a"]) for _ in range(20)])
            await asyncio.sleep(0.005)
        outputs = [await reader.communicate() for reader in readers]
        for (out, err), reader in zip(outputs, readers, strict=True):
            assert reader.returncode == 0, err.decode()
            assert int(out) > 0
        assert (await writer.counts())["running"] == 1200
        assert json.loads((await writer.list(limit=1)).model_dump_json())["items"]
