"""The dashboard in a real browser (Debian's headless Chromium) over real workflows.

Workers and a monitor record into a sqlite file; the dashboard reads that file through a store of
its own (as another process would) and serves on a free loopback port; Playwright drives it.
Everything runs in one module-scoped event loop (see the research note on the event-loop
pitfall of sync Playwright fixtures).
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from paigeant import ActivitySpec, SqliteWorkflowStore, activity_queue
from paigeant_dashboard import DashboardSettings, create_app

from .conftest import (
    DOCS_IMAGES,
    DOCS_SCREENSHOTS,
    OBO_TOKEN,
    SIGNING_KEY,
    XSS,
    World,
    served,
    three_steps,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

LONG_TEXT = "\n".join(
    f"Line {i}: the model kept talking about durable workflows." for i in range(60)
)
#: Counts elements a payload could create: any <script> or <img> outside our own header.
INJECTED = (
    "document.querySelectorAll('main script, main img, main svg image, img[src=\"x\"]').length"
)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    """A few finished workflows of every kind, and one that keeps running."""
    async with World(tmp_path_factory.mktemp("paigeant-home")) as world:
        world.first = (
            await world.run(
                [
                    ActivitySpec(name="fetch", arguments={"rows": 3, "sleep": 0.05}),
                    ActivitySpec(
                        name="think", arguments={"text": LONG_TEXT, "fail_once": True, "sleep": 0.1}
                    ),
                    ActivitySpec(
                        name="write", arguments={"output": {"summary": "ok"}, "sleep": 0.3}
                    ),
                ],
                variables={"topic": "durable agents", "audience": "engineers"},
                obo_token=OBO_TOKEN,
            )
        ).correlation_id
        await world.run(three_steps(text="short"))
        faulted = await world.run(
            [
                ActivitySpec(name="reserve"),
                ActivitySpec(
                    name="charge", arguments={"error": "card declined: insufficient funds"}
                ),
            ]
        )
        world.faulted = faulted.correlation_id
        await world.run(three_steps(output=["done", 2]))
        world.running = await world.dispatch(
            [ActivitySpec(name="fetch"), ActivitySpec(name="wait"), ActivitySpec(name="write")]
        )
        await world.until_recorded(world.running, lambda r: any(s.name == "wait" for s in r.steps))
        yield world


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def base_url(world: World) -> AsyncIterator[str]:
    """The dashboard over the world's sqlite file and its transport."""
    app = create_app(
        SqliteWorkflowStore(url=str(world.path)), world.transport, settings=DashboardSettings()
    )
    async with served(app) as url:
        yield url


class Tab:
    """A page plus what it saw: dialogs opened and console errors."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self._pending: set[asyncio.Future[None]] = set()
        page.on("dialog", self._dialog)
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        self._pending.add(asyncio.ensure_future(dialog.dismiss()))


@pytest_asyncio.fixture(loop_scope="module")
async def tab(browser: Any) -> AsyncIterator[Tab]:
    """A fresh browser context and page per test."""
    context = await browser.new_context(viewport={"width": 1280, "height": 860})
    try:
        yield Tab(await context.new_page())
    finally:
        await context.close()


async def shoot(tab: Tab, screenshots: Path, name: str) -> Path:
    """Keep a screenshot of the page (and the docs' copy when asked to regenerate it)."""
    path = screenshots / f"{name}.png"
    await tab.page.screenshot(path=str(path), full_page=True)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    if DOCS_SCREENSHOTS and name in ("workflows", "workflow"):
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_IMAGES / f"dashboard-{name}.png")
    return path


async def live(tab: Tab) -> None:
    """Wait until the page's event stream is open."""
    from playwright.async_api import expect

    await expect(tab.page.locator("#live")).to_have_text("live", timeout=10_000)


async def test_the_list_shows_the_workflows_newest_first_with_counts(
    tab: Tab, base_url: str, world: World, screenshots: Path
) -> None:
    from playwright.async_api import expect

    response = await tab.page.goto(f"{base_url}/workflows")
    assert response is not None and response.status == 200
    assert "default-src 'none'" in (await response.all_headers())["content-security-policy"]
    rows = tab.page.locator("#rows tr")
    await expect(rows).to_have_count(5)
    assert await rows.first.get_attribute("data-cid") == world.running
    assert await rows.last.get_attribute("data-cid") == world.first
    await expect(rows.first.locator(".activities .current")).to_have_text("wait")
    counts = {
        name: await tab.page.locator(f'[data-count="{name}"]').inner_text()
        for name in ("total", "running", "completed", "faulted")
    }
    assert counts == {"total": "5", "running": "1", "completed": "3", "faulted": "1"}
    await tab.page.locator('select[name="status"]').select_option("faulted")
    await tab.page.get_by_role("button", name="Filter").click()
    await expect(rows).to_have_count(1)
    await expect(rows.first.locator("td.error")).to_contain_text("card declined")
    await tab.page.goto(f"{base_url}/workflows")
    await live(tab)
    await shoot(tab, screenshots, "workflows")
    assert tab.errors == [] and tab.dialogs == []


async def test_a_new_workflow_appears_and_counts_change_without_a_reload(
    tab: Tab, base_url: str, world: World
) -> None:
    from playwright.async_api import expect

    await tab.page.goto(f"{base_url}/workflows")
    await live(tab)
    await tab.page.evaluate("window.__notReloaded = true")
    before = int(await tab.page.locator('[data-count="completed"]').inner_text())
    record = await world.run(three_steps(text="fresh"))
    row = tab.page.locator(f'#rows tr[data-cid="{record.correlation_id}"]')
    await expect(row).to_be_visible(timeout=10_000)
    await expect(row.locator(".badge")).to_have_text("completed")
    await expect(row.locator('[data-field="steps"]')).to_have_text("3/3")
    assert (
        await tab.page.locator("#rows tr").first.get_attribute("data-cid") == record.correlation_id
    )
    await expect(tab.page.locator('[data-count="completed"]')).to_have_text(str(before + 1))
    link = await row.locator("a").get_attribute("href")
    assert link == f"/workflows/{record.correlation_id}"
    assert await tab.page.evaluate("window.__notReloaded") is True, "the page reloaded"
    assert tab.errors == []


async def test_the_workflow_page_shows_every_step_on_a_timeline(
    tab: Tab, base_url: str, world: World, screenshots: Path
) -> None:
    from playwright.async_api import expect

    record = await world.store.get(world.first)
    assert record is not None
    await tab.page.goto(f"{base_url}/workflows/{world.first}")
    steps = tab.page.locator("article.step")
    await expect(steps).to_have_count(3)
    await expect(steps.locator("h3")).to_have_text(["fetch", "think", "write"])
    await expect(steps.nth(1)).to_contain_text("2 attempts")
    await expect(steps.nth(1).locator(".retries")).to_contain_text(
        "attempt 1 failed RuntimeError: model overloaded, try again"
    )
    await expect(steps.nth(2).locator("pre.value")).to_contain_text('"summary": "ok"')
    # Bars proportional to duration: each successful attempt's width over the whole span.
    span = float(await tab.page.locator(".timeline").get_attribute("data-span") or 0)
    lanes = tab.page.locator(".lane")
    await expect(lanes).to_have_count(3)
    for index, step in enumerate(record.steps):
        width = float(await lanes.nth(index).locator("rect.seg-ok").get_attribute("width") or 0)
        assert step.duration is not None
        assert abs(width / 1000 - step.duration / span) < 0.02, (step.name, width, step.duration)
    think = lanes.nth(1)
    await expect(think.locator("rect.seg-failed")).to_have_count(1)
    await expect(think.locator("rect.mark-retry")).to_have_count(1)
    await shoot(tab, screenshots, "workflow")
    # A long output is folded: a preview, the whole text one click away.
    folded = steps.nth(1).locator("details.value")
    assert await folded.get_attribute("open") is None
    await expect(folded.locator(".more")).to_contain_text("Show all 60 lines")
    await folded.locator("summary").click()
    await expect(folded.locator("pre.value")).to_contain_text("Line 59: the model kept talking")
    await expect(tab.page.locator("section", has_text="Variables")).to_contain_text(
        '"topic": "durable agents"'
    )
    # The correlation id and the trace id lead to each other.
    assert record.trace_id is not None
    trace = tab.page.locator(f'a[href="/traces/{record.trace_id}"]')
    await expect(trace).to_have_text(record.trace_id)
    await trace.click()
    await expect(tab.page.locator("h1 code")).to_have_text(world.first)
    assert tab.page.url == f"{base_url}/workflows/{world.first}"
    assert tab.errors == [] and tab.dialogs == []


async def test_a_faulted_workflow_shows_its_error_and_compensation(
    tab: Tab, base_url: str, world: World
) -> None:
    from playwright.async_api import expect

    await tab.page.goto(f"{base_url}/workflows/{world.faulted}")
    await expect(tab.page.locator("h1 .badge")).to_have_text("faulted")
    error = "NonRetryableError: card declined: insufficient funds"
    await expect(tab.page.locator(".problem pre")).to_have_text(error)
    await expect(tab.page.locator("article.step").nth(1).locator("pre.error-text")).to_have_text(
        error
    )
    compensations = tab.page.locator("section", has_text="Compensations").locator("tbody tr")
    await expect(compensations).to_have_count(1)
    await expect(compensations.first).to_contain_text("reserve")
    await expect(compensations.first.locator(".badge")).to_have_text("compensated")
    lanes = tab.page.locator(".lane-label")
    await expect(lanes).to_have_text(["1. reserve", "2. charge", "↩ reserve"])
    await expect(tab.page.locator(".lane").nth(2).locator("rect.mark-compensated")).to_have_count(1)


async def test_a_running_workflow_page_says_when_it_changed(
    tab: Tab, base_url: str, world: World
) -> None:
    from playwright.async_api import expect

    await tab.page.goto(f"{base_url}/workflows/{world.running}")
    await live(tab)
    notice = tab.page.locator("#changed")
    await expect(notice).to_be_hidden()
    world.release.set()
    await expect(notice).to_be_visible(timeout=10_000)
    await notice.locator("a").click()
    await expect(tab.page.locator("h1 .badge")).to_have_text("completed")


async def test_the_xss_payload_is_text_in_the_page_and_runs_nothing(
    tab: Tab, base_url: str, world: World
) -> None:
    from playwright.async_api import expect

    record = await world.run(
        three_steps(output=XSS, text=XSS),
        variables={"note": XSS},
        correlation_id=f"xss-{uuid.uuid4()}",
    )
    await tab.page.goto(f"{base_url}/workflows/{record.correlation_id}")
    steps = tab.page.locator("article.step")
    await expect(steps.nth(2).locator("pre.value")).to_have_text(XSS)
    await expect(steps.nth(1).locator("pre.value")).to_have_text(XSS)
    await expect(tab.page.locator("section", has_text="Variables")).to_contain_text(XSS)
    assert await tab.page.evaluate(INJECTED) == 0
    await tab.page.goto(f"{base_url}/workflows")
    await expect(tab.page.locator(f'#rows tr[data-cid="{record.correlation_id}"]')).to_be_visible()
    assert await tab.page.evaluate(INJECTED) == 0
    await tab.page.wait_for_timeout(200)  # an onerror handler would have fired by now
    assert tab.dialogs == []


async def test_the_xss_payload_through_the_live_update_runs_nothing(
    tab: Tab, base_url: str, world: World
) -> None:
    from playwright.async_api import expect

    await tab.page.goto(f"{base_url}/workflows")
    await live(tab)
    cid = f"{XSS}-{uuid.uuid4()}"
    await world.run([ActivitySpec(name="charge", arguments={"error": XSS})], correlation_id=cid)
    row = tab.page.locator("#rows tr").first
    await expect(row.locator("code")).to_have_text(cid, timeout=10_000)
    await expect(row.locator("td.error")).to_have_text(f"NonRetryableError: {XSS}")
    assert await row.locator("td.error").get_attribute("title") == f"NonRetryableError: {XSS}"
    assert await tab.page.evaluate(INJECTED) == 0
    await tab.page.wait_for_timeout(200)
    assert tab.dialogs == []
    await row.locator("a").click()  # the odd id still has a working, stable URL
    await expect(tab.page.locator("h1 code")).to_have_text(cid)
    await expect(tab.page.locator(".problem pre")).to_have_text(f"NonRetryableError: {XSS}")
    assert await tab.page.evaluate(INJECTED) == 0
    assert tab.dialogs == []
    # The detectors do see an injection when there is one (so the checks above can fail).
    await tab.page.goto("about:blank")
    await tab.page.set_content(f"<main>{XSS}</main>")
    await tab.page.wait_for_timeout(200)
    assert await tab.page.evaluate(INJECTED) == 2
    assert "1" in tab.dialogs


async def test_no_token_or_key_is_in_any_page(tab: Tab, base_url: str, world: World) -> None:
    from playwright.async_api import expect

    await world.use_ledger_key(False)
    cid = await world.dispatch([ActivitySpec(name="ledger")], obo_token=OBO_TOKEN)
    queue = activity_queue("ledger")
    await world.until_dead_lettered(queue)
    await world.until_recorded(cid, lambda record: record.dispatched_at is not None)
    pages = [f"/workflows/{cid}", f"/workflows/{world.first}", "/workflows", "/queues"]
    pages += [f"/queues/{queue}/dead-letters", f"/queues/{queue}/redrive?all=1"]
    seen = []
    for path in pages:
        response = await tab.page.goto(base_url + path)
        assert response is not None and response.status == 200, path
        await tab.page.locator("details").evaluate_all("(all) => all.forEach(d => d.open = true)")
        seen.append(await tab.page.content())
    await expect(tab.page.locator("h1")).to_contain_text("Redrive all")
    text = "\n".join(seen)
    assert cid in text and "obo_token" in text and "&lt;redacted&gt;" in text
    assert OBO_TOKEN not in text
    assert SIGNING_KEY not in text
    assert "paigeant-signature" not in text
    await tab.page.locator("a", has_text="Cancel").click()  # the confirmation alone changes nothing
    assert (await world.transport.stats(queue)).dead == 1


async def test_redrive_from_the_page_completes_dead_lettered_workflows(
    tab: Tab, base_url: str, world: World, screenshots: Path
) -> None:
    from playwright.async_api import expect

    queue = activity_queue("ledger")
    await world.use_ledger_key(False)
    already = (await world.transport.stats(queue)).dead
    first = await world.dispatch([ActivitySpec(name="fetch"), ActivitySpec(name="ledger")])
    await world.until_dead_lettered(queue, already + 1)
    second = await world.dispatch([ActivitySpec(name="ledger")])
    await world.until_dead_lettered(queue, already + 2)
    stuck = await world.until_recorded(first, lambda r: r.steps and r.steps[0].output)
    assert stuck.status == "running" and stuck.pending == ["ledger"]
    await world.use_ledger_key(True)  # the fixed worker is deployed: now a redrive can work

    await tab.page.goto(f"{base_url}/queues")
    row = tab.page.locator("table.queues tr", has_text=queue)
    await expect(row.locator("td.dead")).to_have_text(str(already + 2))
    await shoot(tab, screenshots, "queues")
    await row.locator("a", has_text="Dead letters").click()
    letters = tab.page.locator("table.letters tr[data-letter]")
    await expect(letters).to_have_count(already + 2)
    mine = letters.filter(has_text=first)
    await expect(mine.locator("td.error")).to_contain_text("invalid signature")
    await shoot(tab, screenshots, "dead-letters")

    await mine.locator("a", has_text="Redrive…").click()
    await expect(tab.page.locator("h1")).to_contain_text("Redrive 1 dead letter")
    await expect(tab.page.locator("table.letters tr[data-letter]")).to_have_count(1)
    await shoot(tab, screenshots, "confirm-redrive")
    assert (await world.transport.stats(queue)).dead == already + 2, "asking redrove something"
    await tab.page.locator("#confirm-redrive").click()
    await expect(tab.page.locator(".flash")).to_have_text(f"Redrove 1 dead letter to {queue}.")
    done = await world.monitor.wait_recorded(first, timeout=15)
    assert done.status == "completed" and done.steps[1].output == "booked after the redrive"
    await expect(letters).to_have_count(already + 1)
    await world.until_recorded(second, lambda record: record.status == "running")

    await tab.page.locator("a", has_text="Redrive all…").click()
    await expect(tab.page.locator("h1")).to_contain_text(f"Redrive all {already + 1} dead letter")
    await tab.page.locator("#confirm-redrive").click()
    await expect(tab.page.locator(".flash")).to_contain_text(f"Redrove {already + 1} dead letter")
    done = await world.monitor.wait_recorded(second, timeout=15)
    assert done.status == "completed"
    await expect(tab.page.locator(".empty")).to_contain_text("No dead letters")
    await tab.page.goto(f"{base_url}/workflows/{first}")
    await expect(tab.page.locator("h1 .badge")).to_have_text("completed")
    assert tab.errors == [] and tab.dialogs == []
