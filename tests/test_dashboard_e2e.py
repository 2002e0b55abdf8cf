"""``paigeant dashboard`` on Redis beside a real monitor and worker, each its own process.

A workflow's first message is parked in the dead letters before any worker runs it; the
dashboard (started with ``--transport redis`` and a token) shows the queue's counts and the dead
letter, and a redrive POSTed to it makes the workflow complete once a worker is up.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys

import httpx
import pytest

from paigeant import activity_queue, get_transport

from .test_operations_e2e import WORKLOADS, Processes, dispatch, eventually, processes, store_env

__all__ = ["processes", "store_env"]  # fixtures this module borrows

TOKEN = "e2e-dashboard-token-0123456789"


async def _park_first_message(queue: str, reason: str) -> None:
    async with get_transport("redis") as transport:
        delivery = await asyncio.wait_for(anext(aiter(transport.consume(queue))), 30)
        await delivery.dead_letter(reason)


@pytest.mark.parametrize("store_env", ["sqlite"], indirect=True)
def test_the_dashboard_shows_redis_queues_and_redrives_a_dead_letter(processes: Processes) -> None:
    processes.start("monitor", ready="paigeant-monitor-ready")
    cid = dispatch(processes, "ops-finish")
    queue = activity_queue("ops-finish")
    asyncio.run(_park_first_message(queue, "parked by the test"))

    dashboard = subprocess.Popen(
        [sys.executable, "-m", "paigeant", "dashboard", "--port", "0", "--transport", "redis"],
        cwd=WORKLOADS,
        env={**processes.env, "PAIGEANT_DASHBOARD_TOKEN": TOKEN},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    processes.running.append(dashboard)
    assert dashboard.stdout is not None
    found = re.match(r"Dashboard running at (\S+) ", dashboard.stdout.readline())
    assert found, "the dashboard printed no URL"
    with httpx.Client(
        base_url=found.group(1).rstrip("/"),
        headers={"Authorization": f"Bearer {TOKEN}", "Accept": "text/html"},
        timeout=30,
    ) as client:
        assert httpx.get(found.group(1) + "workflows", timeout=10).status_code == 401
        queues = client.get("/queues")
        assert queues.status_code == 200 and "on the RedisTransport" in queues.text
        row = queues.text.split(f"<code>{queue}</code>", 1)[1].split("</tr>", 1)[0]
        assert re.findall(r'<td class="num[^"]*">(\d+)</td>', row) == ["0", "0", "0", "1"]
        letters = client.get(f"/queues/{queue}/dead-letters")
        assert "parked by the test" in letters.text and cid in letters.text

        processes.start("worker", "ops_activities:MAIN", ready="paigeant-worker-ready")
        redriven = client.post(f"/queues/{queue}/redrive", data={"all": "1"})
        assert redriven.status_code == 303
        eventually(
            lambda: 'class="badge status-completed"' in client.get(f"/workflows/{cid}").text,
            "the redriven workflow to complete",
        )
        page = client.get(f"/workflows/{cid}").text
        assert "finished" in page and TOKEN not in page
        assert "No dead letters" in client.get(f"/queues/{queue}/dead-letters").text
