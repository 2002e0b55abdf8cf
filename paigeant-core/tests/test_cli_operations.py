"""``paigeant workflows``, ``dead-letters`` and ``queues``: tables, JSON, and one-line errors."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
from typer.testing import CliRunner

from paigeant import EventType, SqliteWorkflowStore, activity_queue
from paigeant.cli import _shared
from paigeant.cli.app import app
from paigeant.testing import Receiver, WorkflowEvents
from paigeant.transports.inmemory import InMemoryBroker, InMemoryTransport

runner = CliRunner()


class SharedMemory(InMemoryTransport):
    """The in-memory transport standing in for a broker that other processes reach."""

    crosses_processes: ClassVar[bool] = True


@pytest.fixture
def broker(monkeypatch: pytest.MonkeyPatch) -> InMemoryBroker:
    shared = InMemoryBroker()

    def get_transport(name: str | None = None, **options: Any) -> InMemoryTransport:
        return SharedMemory(broker=shared, **options)

    monkeypatch.setattr(_shared, "get_transport", get_transport)
    monkeypatch.setenv("PAIGEANT_SIGNER", "none")
    return shared


@pytest.fixture
def recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, WorkflowEvents]:
    """A sqlite store (found through PAIGEANT_HOME) holding a completed and a faulted workflow."""
    monkeypatch.setenv("PAIGEANT_HOME", str(tmp_path))
    done, failed = WorkflowEvents(), WorkflowEvents()
    events = [done.dispatched(["fetch", "write"], {"topic": "ops"})]
    events += [done.started(0, "fetch"), done.completed(0, "fetch", {"rows": 2})]
    events += [done.started(1, "write"), done.retried(1, "write", 1, "disk busy")]
    events += [done.completed(1, "write", "report.md", attempt=2)]
    events.append(done.finished(EventType.WORKFLOW_COMPLETED, 1, variables={"topic": "ops"}))
    events += [failed.dispatched(["fetch", "charge"]), failed.completed(0, "fetch", 1)]
    events += [failed.faulted(1, "charge", error="card declined")]
    events += [failed.compensated(0, "fetch", 3)]
    events.append(failed.finished(EventType.WORKFLOW_FAULTED, 3, compensated=["fetch"]))

    async def fill() -> None:
        async with SqliteWorkflowStore() as store:
            await store.record_many(events)

    asyncio.run(fill())
    return {"done": done, "failed": failed}


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args), env={"COLUMNS": "200"})


def test_workflows_list_shows_newest_first_with_status_and_steps(recorded: Any) -> None:
    result = invoke("workflows", "list")
    assert result.exit_code == 0, result.output
    done, failed = recorded["done"].correlation_id, recorded["failed"].correlation_id
    assert result.output.index(failed) < result.output.index(done)
    assert "fetch → write" in result.output and "2/2" in result.output
    assert "RuntimeError: card declined" in result.output
    assert "completed 1 · faulted 1" in result.output


def test_workflows_list_filters_and_json(recorded: Any) -> None:
    result = invoke("workflows", "list", "--status", "faulted", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [item["correlation_id"] for item in data["items"]] == [recorded["failed"].correlation_id]
    assert data["items"][0]["error"] == "RuntimeError: card declined"
    assert data["counts"]["faulted"] == 1 and data["next_cursor"] is None
    by_activity = json.loads(invoke("workflows", "list", "--activity", "write", "--json").output)
    assert [i["correlation_id"] for i in by_activity["items"]] == [recorded["done"].correlation_id]
    first = json.loads(invoke("workflows", "list", "--limit", "1", "--json").output)
    assert first["next_cursor"]
    second = json.loads(
        invoke("workflows", "list", "--cursor", first["next_cursor"], "--json").output
    )
    assert [i["correlation_id"] for i in second["items"]] == [recorded["done"].correlation_id]


def test_workflows_show_has_steps_retries_and_compensation(recorded: Any) -> None:
    result = invoke("workflows", "show", recorded["done"].correlation_id)
    assert result.exit_code == 0, result.output
    assert "status         completed" in result.output
    assert "report.md" in result.output and '{"rows": 2}' in result.output
    assert "attempt 1: RuntimeError: disk busy (retried in 0.250s)" in result.output
    assert "0.250s" in result.output  # step durations
    failed = invoke("workflows", "show", recorded["failed"].correlation_id)
    assert "compensations" in failed.output and "compensated" in failed.output
    assert "RuntimeError: card declined" in failed.output
    data = json.loads(
        invoke("workflows", "show", recorded["failed"].correlation_id, "--json").output
    )
    assert data["status"] == "faulted"
    assert [c["name"] for c in data["compensations"]] == ["fetch"]
    assert data["steps"][1]["attempts"] == 1 and data["pending"] == []


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (
            ["workflows", "show", "no-such-id"],
            "no workflow 'no-such-id' is recorded in the sqlite",
            1,
        ),
        (["workflows", "list", "--status", "exploded"], "unknown status 'exploded'", 2),
        (["workflows", "list", "--cursor", "garbage"], "invalid cursor 'garbage'", 2),
        (["workflows", "list", "--store", "nosuch"], "unknown workflow store 'nosuch'", 2),
    ],
)
def test_workflow_errors_are_one_clear_line(
    recorded: Any, args: list[str], message: str, code: int
) -> None:
    result = invoke(*args)
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_an_unreachable_store_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAIGEANT_STORE_URL", "/proc/no-such-dir/paigeant.db")
    result = invoke("workflows", "list")
    assert result.exit_code == 1
    assert result.output.startswith("error: cannot open the sqlite workflow store at /proc/")
    assert len(result.output.strip().splitlines()) == 1


async def _park(broker: InMemoryBroker, activity: str, bodies: list[bytes]) -> None:
    async with SharedMemory(broker=broker) as transport:
        queue = activity_queue(activity)
        for i, body in enumerate(bodies):
            await transport.publish(
                queue, body, message_id=f"msg-{i}", headers={"paigeant-correlation-id": f"cid-{i}"}
            )
        async with Receiver(transport, queue) as receiver:
            for _ in bodies:
                delivery = await receiver.get()
                assert delivery is not None
                await delivery.dead_letter(f"broken {delivery.message_id}")


def test_dead_letters_list_show_and_redrive(broker: InMemoryBroker, recorded: Any) -> None:
    body = json.dumps({"obo_token": "very-secret", "routing_slip": {}}).encode()
    asyncio.run(_park(broker, "fetch", [body, b"plain"]))
    listed = invoke("dead-letters", "list", "fetch")
    assert listed.exit_code == 0, listed.output
    assert "msg-0" in listed.output and "broken msg-1" in listed.output and "cid-1" in listed.output
    data = json.loads(invoke("dead-letters", "list", "paigeant.fetch", "--json").output)
    assert [d["id"] for d in data] == ["msg-0", "msg-1"]
    shown = invoke("dead-letters", "show", "paigeant.fetch.dead-letter", "msg-0")
    assert shown.exit_code == 0, shown.output
    assert "<redacted>" in shown.output and "very-secret" not in shown.output
    assert invoke("dead-letters", "show", "fetch", "nope").exit_code == 1
    redriven = invoke("dead-letters", "redrive", "fetch", "msg-1", "missing")
    assert redriven.exit_code == 1
    assert "redriven msg-1 → paigeant.fetch" in redriven.output
    assert "no dead letter 'missing'" in redriven.output
    left = json.loads(invoke("dead-letters", "list", "fetch", "--json").output)
    assert [d["id"] for d in left] == ["msg-0"]
    queues = invoke("queues", "--json")
    rows = {row["queue"]: row for row in json.loads(queues.output)}
    assert rows["paigeant.fetch"] == {
        "queue": "paigeant.fetch",
        "ready": 1,
        "in_flight": 0,
        "delayed": 0,
        "dead": 1,
    }
    assert set(rows) >= {
        "paigeant.fetch",
        "paigeant.write",
        "paigeant.charge",
        "paigeant.monitor.events",
    }
    assert "paigeant.fetch.compensate" not in rows, "an empty compensation queue was shown"
    assert invoke("dead-letters", "redrive", "fetch", "--all").exit_code == 0
    assert json.loads(invoke("dead-letters", "list", "fetch", "--json").output) == []


def test_queues_table_and_not_supported(
    broker: InMemoryBroker, recorded: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = invoke("queues")
    assert table.exit_code == 0, table.output
    assert "paigeant.fetch" in table.output and "in flight" in table.output

    async def no_stats(self: InMemoryTransport, queue: str) -> Any:
        raise NotImplementedError

    monkeypatch.setattr(SharedMemory, "stats", no_stats)
    unsupported = invoke("queues", "fetch", "paigeant.write")
    assert unsupported.exit_code == 0, unsupported.output
    assert unsupported.output.count("not supported") == 2


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (["dead-letters", "list", "typo-activity"], "unknown queue 'paigeant.typo-activity'", 1),
        (
            ["dead-letters", "redrive", "fetch"],
            "give the ids of the dead letters to redrive, or --all",
            2,
        ),
        (["dead-letters", "redrive", "fetch", "x", "--all"], "or --all (not both)", 2),
    ],
)
def test_dead_letter_errors_are_one_clear_line(
    broker: InMemoryBroker, recorded: Any, args: list[str], message: str, code: int
) -> None:
    result = invoke(*args)
    assert result.exit_code == code, result.output
    assert message in result.output


def test_operations_refuse_the_in_process_transport(recorded: Any) -> None:
    for args in (["dead-letters", "list", "fetch"], ["queues"], ["monitor"]):
        result = invoke(*args, "--transport", "inmemory")
        assert result.exit_code == 2, result.output
        assert "only reaches queues inside one process" in result.output


def test_queues_without_a_store_or_names_says_what_to_do(
    broker: InMemoryBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAIGEANT_STORE_URL", "/proc/no-such-dir/paigeant.db")
    result = invoke("queues")
    assert result.exit_code == 1
    assert "cannot open the sqlite workflow store" in result.output
    assert "or name the queues: paigeant queues ACTIVITY..." in result.output
