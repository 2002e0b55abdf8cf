"""Choosing and locating the workflow store; the sqlite file shared by several processes."""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from paigeant import (
    MemoryWorkflowStore,
    Monitor,
    PluginNotFoundError,
    SqliteWorkflowStore,
    StoreUnavailableError,
    WorkflowRecord,
    get_workflow_store,
    plugins,
)
from paigeant.errors import ConfigurationError
from paigeant.settings import paigeant_home
from paigeant.store._sqlite_schema import _MIGRATIONS, SCHEMA_VERSION
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
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,) == (3,)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        db.execute("PRAGMA user_version = 7")
    with pytest.raises(StoreUnavailableError, match="schema version 7, newer than this paigeant"):
        await SqliteWorkflowStore(url=str(path)).connect()


async def test_a_version_1_store_is_migrated_and_keeps_its_workflows(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    w = WorkflowEvents()
    old = WorkflowRecord.from_event(w.dispatched(["a"])).model_dump(exclude={"trace_id"})
    with sqlite3.connect(path) as db:  # what paigeant with schema version 1 left behind
        db.executescript(_MIGRATIONS[0])
        db.execute(
            "INSERT INTO workflows (correlation_id, status, change_seq, summary, record) "
            "VALUES (?, 'running', 1, ?, ?)",
            (w.correlation_id, "{}", WorkflowRecord.model_validate(old).model_dump_json()),
        )
        db.execute("PRAGMA user_version = 1")
    async with SqliteWorkflowStore(url=str(path)) as store:
        record = await store.get(w.correlation_id)
        assert record is not None and record.trace_id is None
        await store.record(w.completed(0, "a"))
        found = await store.get_by_trace(w.trace_id)
        assert found is not None and found.correlation_id == w.correlation_id


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
    async with SqliteWorkflowStore(url=sys.argv[1], read_only=True) as store:
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


async def test_a_reader_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "paigeant.db"
    store = SqliteWorkflowStore(url=str(path), read_only=True)
    with pytest.raises(StoreUnavailableError) as caught:
        await store.connect()
    assert str(caught.value).startswith(f"no workflow store at {path}: run a monitor")
    assert "paigeant demo" in str(caught.value)
    assert not path.parent.exists(), "a reader created the store's directory"


async def test_connecting_takes_no_write_lock_when_the_schema_is_current(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    async with SqliteWorkflowStore(url=str(path)) as writer:
        await writer.record(WorkflowEvents().dispatched(["a"]))
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another monitor in the middle of a batch
        try:
            for read_only in (True, False):
                async with SqliteWorkflowStore(
                    url=str(path), busy_timeout=0.2, read_only=read_only
                ) as other:
                    assert len((await other.list()).items) == 1
        finally:
            holder.execute("ROLLBACK")
            holder.close()


async def test_a_read_only_store_records_nothing(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    async with SqliteWorkflowStore(url=str(path)):
        pass
    async with SqliteWorkflowStore(url=str(path), read_only=True) as reader:
        with pytest.raises(ConfigurationError, match="opened read-only"):
            await reader.record(WorkflowEvents().dispatched(["a"]))
        from paigeant.transports.inmemory import InMemoryTransport

        with pytest.raises(ValueError, match="is read-only"):
            Monitor(InMemoryTransport(), reader, signer="none")
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM events").fetchone() == (0,)


async def test_a_reader_migrates_an_old_schema_only_where_it_may_write(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    sqlite3.connect(path).close()  # an empty file: schema version 0
    async with SqliteWorkflowStore(url=str(path), read_only=True) as reader:
        assert (await reader.list()).items == []
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] >= 1


def _without_write_access() -> list[str]:
    """A command prefix under which this user cannot write what its permissions say it may not."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: root's permission override cannot be dropped")
    return [setpriv, "--bounding-set=-all", "--"]


READ_ONLY_READER = """
import asyncio, sys
from paigeant import SqliteWorkflowStore
async def main():
    async with SqliteWorkflowStore(url=sys.argv[1], read_only=True) as store:
        print(len((await store.list(limit=1000)).items))
asyncio.run(main())
"""


def _read_as_unprivileged(path: Path, *command: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PAIGEANT_STORE_URL": str(path), "PAIGEANT_HOME": str(path.parent)}
    return subprocess.run(
        [*_without_write_access(), sys.executable, *command],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


async def test_readers_read_a_database_they_cannot_write(tmp_path: Path) -> None:
    folder = tmp_path / "read-only"
    path = folder / "paigeant.db"
    async with SqliteWorkflowStore(url=str(path)) as writer:
        await writer.record_many([WorkflowEvents().dispatched(["a"]) for _ in range(3)])
        if os.geteuid() == 0:  # a monitor keeps it open (its -wal and -shm exist) meanwhile
            folder.chmod(0o555)
            done = _read_as_unprivileged(path, "-c", READ_ONLY_READER, str(path))
            assert (done.returncode, done.stdout.strip()) == (0, "3"), done.stderr
            folder.chmod(0o755)
    path.chmod(0o444)
    folder.chmod(0o555)
    try:
        assert sorted(p.name for p in folder.iterdir()) == ["paigeant.db"]
        done = _read_as_unprivileged(path, "-c", READ_ONLY_READER, str(path))
        assert (done.returncode, done.stdout.strip()) == (0, "3"), done.stderr
        cli = _read_as_unprivileged(path, "-m", "paigeant", "workflows", "list", "--json")
        assert cli.returncode == 0, cli.stderr
        assert len(json.loads(cli.stdout)["items"]) == 3
        assert sorted(p.name for p in folder.iterdir()) == ["paigeant.db"]
    finally:
        folder.chmod(0o755)
        path.chmod(0o644)
