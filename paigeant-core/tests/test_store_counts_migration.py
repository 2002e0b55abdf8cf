"""A sqlite store made before the status counters comes out of migration 3 with exact counts."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from paigeant import EventType, SqliteWorkflowStore
from paigeant.store._sqlite_schema import _MIGRATIONS, SCHEMA_VERSION
from paigeant.testing import WorkflowEvents, records_in_every_status, recount

STATUSES = ("running", "completed", "compensating", "faulted", "terminated")


def group_by(db: sqlite3.Connection, activity: str | None = None) -> dict[str, int]:
    """Workflows per status counted from the rows (every status of ``STATUSES``)."""
    if activity is None:
        rows = db.execute("SELECT status, count(*) FROM workflows GROUP BY status")
    else:
        rows = db.execute(
            "SELECT w.status, count(*) FROM workflow_activities a JOIN workflows w "
            "ON w.seq = a.seq WHERE a.activity = ? GROUP BY w.status",
            (activity,),
        )
    return dict(rows.fetchall())


async def test_a_version_2_store_is_backfilled_and_counts_stay_exact(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    records = records_in_every_status()
    with sqlite3.connect(path) as db:  # what paigeant with schema version 2 left behind
        for migration in _MIGRATIONS[:2]:
            db.executescript(migration)
        for change, record in enumerate(records, 1):
            (seq,) = db.execute(
                "INSERT INTO workflows (correlation_id, status, change_seq, summary, record, "
                "trace_id) VALUES (?, ?, ?, ?, ?, ?) RETURNING seq",
                (
                    record.correlation_id,
                    record.status,
                    change,
                    record.summary().model_dump_json(),
                    record.model_dump_json(),
                    record.trace_id,
                ),
            ).fetchone()
            db.executemany(
                "INSERT INTO workflow_activities (activity, seq) VALUES (?, ?)",
                [(name, seq) for name in set(record.activities)],
            )
        db.execute("PRAGMA user_version = 2")
        expected = {name: group_by(db, name) for name in (None, "a", "b", "c")}
    assert expected[None] == dict.fromkeys(STATUSES, 8)
    async with SqliteWorkflowStore(url=str(path)) as store:
        for name, counts in expected.items():
            found = await store.counts(activity=name)
            assert {s: n for s, n in found.items() if n} == counts, name
            assert found == await recount(store, name), name
        w = WorkflowEvents()  # counting goes on from the backfilled figures
        await store.record_many(
            [w.dispatched(["a", "d"]), w.finished(EventType.WORKFLOW_COMPLETED, 1)]
        )
        assert (await store.counts())["completed"] == 9
        assert (await store.counts(activity="a"))["completed"] == 5
        assert (await store.counts(activity="d"))["completed"] == 1
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        for name in (None, "a", "b", "c", "d"):
            assert counters(db, name) == group_by(db, name), name


def counters(db: sqlite3.Connection, activity: str | None = None) -> dict[str, int]:
    """The store's counters of workflows per status (those above zero)."""
    if activity is None:
        rows = db.execute("SELECT status, n FROM workflow_counts WHERE n > 0")
    else:
        rows = db.execute(
            "SELECT status, n FROM activity_counts WHERE n > 0 AND activity = ?", (activity,)
        )
    return dict(rows.fetchall())
