"""The token gate in a real browser: login form, wrong token, session cookie, Bearer header."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import pytest_asyncio

from paigeant import SqliteWorkflowStore
from paigeant_dashboard import DashboardSettings, create_app

from .conftest import DASHBOARD_TOKEN, SIGNING_KEY, World, served, three_steps

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    """Two finished workflows."""
    async with World(tmp_path_factory.mktemp("paigeant-home")) as world:
        world.first = (await world.run(three_steps())).correlation_id
        await world.run(three_steps(text="another"))
        yield world


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def base_url(world: World) -> AsyncIterator[str]:
    """The dashboard with PAIGEANT_DASHBOARD_TOKEN's equivalent set."""
    app = create_app(
        SqliteWorkflowStore(url=str(world.path)),
        world.transport,
        settings=DashboardSettings(token=DASHBOARD_TOKEN),
    )
    async with served(app) as url:
        yield url


@pytest_asyncio.fixture(loop_scope="module")
async def context(browser: Any) -> AsyncIterator[Any]:
    """A fresh browser context (no cookies) per test."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        yield context
    finally:
        await context.close()


async def test_without_the_token_a_page_asks_for_it(
    context: Any, base_url: str, world: World, screenshots: Path
) -> None:
    from playwright.async_api import expect

    page = await context.new_page()
    target = f"/workflows/{world.first}"
    response = await page.goto(base_url + target)
    assert response is not None and response.status == 200
    assert page.url == f"{base_url}/login?next={quote(target, safe='')}"
    await expect(page.locator("h1")).to_have_text("Log in")
    await expect(page.locator(".mainnav")).to_have_count(0)  # nothing about the store shown
    html = await page.content()
    assert "fetch" not in html and "sqlite" not in html  # no workflow data, not even the store
    await page.screenshot(path=str(screenshots / "login.png"), full_page=True)
    api = await context.request.get(f"{base_url}/workflows")  # not a browser page: 401
    assert api.status == 401
    assert api.headers["www-authenticate"].startswith("Bearer")
    events = await context.request.get(f"{base_url}/events")
    assert events.status == 401


async def test_a_wrong_token_is_refused(context: Any, base_url: str) -> None:
    from playwright.async_api import expect

    page = await context.new_page()
    await page.goto(f"{base_url}/workflows")
    await page.fill("#token", DASHBOARD_TOKEN + "x")
    async with page.expect_response(lambda r: r.url.endswith("/login")) as info:
        await page.get_by_role("button", name="Log in").click()
    assert (await info.value).status == 401
    await expect(page.locator(".form-error")).to_have_text("That is not the dashboard's token.")
    await page.goto(f"{base_url}/workflows")
    assert "/login" in page.url
    assert await page.locator("#token").input_value() == ""


async def test_the_login_form_opens_the_page_asked_for_and_keeps_the_session(
    context: Any, base_url: str, world: World
) -> None:
    from playwright.async_api import expect

    page = await context.new_page()
    await page.goto(f"{base_url}/workflows/{world.first}")
    await page.fill("#token", DASHBOARD_TOKEN)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.locator("h1 code")).to_have_text(world.first)
    assert page.url == f"{base_url}/workflows/{world.first}"
    (cookie,) = [c for c in await context.cookies() if c["name"] == "paigeant_dashboard_session"]
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Lax"
    assert "paigeant_dashboard_session" not in await page.evaluate("document.cookie")
    await page.goto(f"{base_url}/workflows")
    await expect(page.locator("#live")).to_have_text("live")  # EventSource rides on the cookie
    await expect(page.locator("#rows tr")).to_have_count(2)
    record = await world.run(three_steps(text="while logged in"))
    await expect(page.locator(f'tr[data-cid="{record.correlation_id}"]')).to_be_visible()
    html = await page.content()
    assert DASHBOARD_TOKEN not in html and SIGNING_KEY not in html
    await page.get_by_role("button", name="Log out").click()
    await expect(page.locator("h1")).to_have_text("Log in")
    await page.goto(f"{base_url}/workflows")
    assert "/login" in page.url


async def test_a_bearer_header_opens_every_page(browser: Any, base_url: str, world: World) -> None:
    from playwright.async_api import expect

    for token in (DASHBOARD_TOKEN, "not-" + DASHBOARD_TOKEN):
        context = await browser.new_context(extra_http_headers={"Authorization": f"Bearer {token}"})
        try:
            page = await context.new_page()
            response = await page.goto(f"{base_url}/workflows/{world.first}")
            assert response is not None and response.status == 200
            api = await context.request.get(f"{base_url}/workflows", headers={"Accept": "*/*"})
            if token == DASHBOARD_TOKEN:
                await expect(page.locator("article.step")).to_have_count(3)
                assert api.status == 200
                assert DASHBOARD_TOKEN not in await page.content()
            else:  # a wrong token is no token: the browser gets the login form, a script 401
                assert "/login?next=" in page.url
                assert api.status == 401
        finally:
            await context.close()


async def test_an_error_page_is_a_page(context: Any, base_url: str, screenshots: Path) -> None:
    from playwright.async_api import expect

    page = await context.new_page()
    await page.set_extra_http_headers({"Authorization": f"Bearer {DASHBOARD_TOKEN}"})
    response = await page.goto(f"{base_url}/workflows/no-such-workflow")
    assert response is not None and response.status == 404
    await expect(page.locator(".error-page h1")).to_have_text("Not found")
    await expect(page.locator(".error-page .message")).to_contain_text(
        "no workflow 'no-such-workflow'"
    )
    await page.screenshot(path=str(screenshots / "error.png"), full_page=True)
