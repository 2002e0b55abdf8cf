"""The token gate, the login form, CSRF protection and what a session cookie looks like."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from urllib.parse import quote

import httpx
import pytest

from paigeant import InMemoryTransport, MemoryWorkflowStore, activity_queue, dead_letter_queue
from paigeant.testing import WorkflowEvents
from paigeant_dashboard import DashboardSettings, create_app

from .conftest import DASHBOARD_TOKEN
from .test_app import HTML, running

BEARER = {"authorization": f"Bearer {DASHBOARD_TOKEN}"}


@pytest.fixture
async def transport() -> AsyncIterator[InMemoryTransport]:
    """An in-memory transport holding one dead letter on the ``ledger`` queue."""
    async with InMemoryTransport() as transport:
        queue = activity_queue("ledger")
        await transport.publish(queue, b"{}", message_id="m-1", headers={"x": "1"})
        delivery = await anext(aiter(transport.consume(queue)))
        await delivery.dead_letter("invalid signature: test")
        yield transport


@pytest.fixture
async def app(transport: InMemoryTransport) -> object:
    """A dashboard with a token, over a store that knows the ledger activity."""
    store = MemoryWorkflowStore()
    await store.record(WorkflowEvents().dispatched(["ledger"]))
    return create_app(store, transport, settings=DashboardSettings(token=DASHBOARD_TOKEN))


def csrf_of(html: str) -> str:
    """The CSRF token of the page's first form."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None, "no CSRF field in the page"
    return found.group(1)


async def login(
    client: httpx.AsyncClient, token: str = DASHBOARD_TOKEN, nxt: str = "/"
) -> httpx.Response:
    form = await client.get("/login", headers=HTML)
    return await client.post(
        "/login", data={"csrf_token": csrf_of(form.text), "token": token, "next": nxt}
    )


async def test_without_the_token_nothing_but_the_login_form_and_static_files(app: object) -> None:
    async with running(app) as client:
        page = await client.get("/workflows?status=running", headers=HTML)
        assert page.status_code == 303
        assert page.headers["location"] == "/login?next=" + quote(
            "/workflows?status=running", safe=""
        )
        for path in ("/workflows", "/events", "/queues", "/workflows/x", "/traces/" + "a" * 32):
            response = await client.get(path)
            assert response.status_code == 401, path
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert DASHBOARD_TOKEN not in response.text
        assert (await client.get("/login", headers=HTML)).status_code == 200
        assert (await client.get("/static/dashboard.js")).status_code == 200
        posted = await client.post("/queues/paigeant.ledger/redrive", data={"all": "1"})
        assert posted.status_code == 401


@pytest.mark.parametrize(
    "header",
    [
        f"Bearer {DASHBOARD_TOKEN}",
        f"bearer {DASHBOARD_TOKEN}",
        f"Bearer  {DASHBOARD_TOKEN} ",
    ],
)
async def test_a_bearer_header_with_the_token_opens_every_page(app: object, header: str) -> None:
    async with running(app) as client:
        for path in ("/workflows", "/queues", "/queues/paigeant.ledger/dead-letters"):
            response = await client.get(path, headers={"authorization": header, **HTML})
            assert response.status_code == 200, path
            assert DASHBOARD_TOKEN not in response.text


@pytest.mark.parametrize(
    "header",
    [
        f"Bearer {DASHBOARD_TOKEN}x",
        f"Bearer {DASHBOARD_TOKEN[:-1]}",
        f"Basic {DASHBOARD_TOKEN}",
        DASHBOARD_TOKEN,
        "Bearer ",
    ],
)
async def test_anything_else_is_refused(app: object, header: str) -> None:
    async with running(app) as client:
        response = await client.get("/workflows", headers={"authorization": header})
        assert response.status_code == 401


async def test_the_login_form_sets_an_httponly_lax_session_cookie(app: object) -> None:
    async with running(app) as client:
        wrong = await login(client, "wrong-" + DASHBOARD_TOKEN)
        assert wrong.status_code == 401 and "not the dashboard&#39;s token" in wrong.text
        assert DASHBOARD_TOKEN not in wrong.text
        assert (await client.get("/workflows")).status_code == 401
        done = await login(client, nxt="/queues")
        assert (done.status_code, done.headers["location"]) == (303, "/queues")
        cookie = done.headers["set-cookie"]
        assert cookie.startswith("paigeant_dashboard_session=")
        assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
        assert "secure" not in cookie.lower()  # plain http on loopback; see secure_cookies
        assert DASHBOARD_TOKEN not in cookie  # the session holds no secret
        assert (await client.get("/workflows", headers=HTML)).status_code == 200
        page = await client.get("/workflows", headers=HTML)
        out = await client.post("/logout", data={"csrf_token": csrf_of(page.text)})
        assert out.status_code == 303
        assert (await client.get("/workflows")).status_code == 401


@pytest.mark.parametrize(
    "target",
    ["//evil.example/", "https://evil.example/", "/\\evil.example", "/\t/evil.example", "evil", ""],
)
async def test_login_never_redirects_off_the_site(app: object, target: str) -> None:
    async with running(app) as client:
        done = await login(client, nxt=target)
        assert (done.status_code, done.headers["location"]) == (303, "/workflows")


async def test_the_secure_flag_behind_tls(transport: InMemoryTransport) -> None:
    settings = DashboardSettings(token=DASHBOARD_TOKEN, secure_cookies=True)
    app = create_app(MemoryWorkflowStore(), transport, settings=settings)
    async with running(app, base_url="https://127.0.0.1") as client:  # TLS ended by a proxy
        done = await login(client)
        assert "; secure" in done.headers["set-cookie"].lower()


async def test_a_post_needs_the_session_csrf_token(
    app: object, transport: InMemoryTransport
) -> None:
    queue = activity_queue("ledger")
    async with running(app) as client:
        await login(client)
        page = await client.get(f"/queues/{queue}/redrive?all=1", headers=HTML)
        good = csrf_of(page.text)
        for data, headers in [
            ({"all": "1"}, {}),
            ({"all": "1", "csrf_token": "forged"}, {}),
            ({"all": "1", "csrf_token": good}, {"sec-fetch-site": "cross-site"}),
            ({"all": "1", "csrf_token": good}, {"sec-fetch-site": "same-site"}),
        ]:
            refused = await client.post(f"/queues/{queue}/redrive", data=data, headers=headers)
            assert refused.status_code == 403, (data, headers)
        assert (await transport.stats(queue)).dead == 1, "a refused POST redrove something"
    async with running(app) as other:  # a stolen CSRF token is useless without its session
        await login(other)
        refused = await other.post(
            f"/queues/{queue}/redrive", data={"all": "1", "csrf_token": good}
        )
        assert refused.status_code == 403
    async with running(app) as client:
        await login(client)
        page = await client.get(f"/queues/{queue}/redrive?all=1", headers=HTML)
        done = await client.post(
            f"/queues/{queue}/redrive",
            data={"all": "1", "csrf_token": csrf_of(page.text)},
            headers={"sec-fetch-site": "same-origin"},
        )
        assert done.status_code == 303
        assert done.headers["location"] == f"/queues/{queue}/dead-letters"
        shown = await client.get(done.headers["location"], headers=HTML)
        assert "Redrove 1 dead letter to paigeant.ledger." in shown.text
    await _redriven(transport, queue)


async def test_a_bearer_client_may_post_without_a_csrf_token(
    app: object, transport: InMemoryTransport
) -> None:
    queue = activity_queue("ledger")
    async with running(app) as client:
        done = await client.post(f"/queues/{queue}/redrive", data={"all": "1"}, headers=BEARER)
        assert done.status_code == 303
    await _redriven(transport, queue)


async def _redriven(transport: InMemoryTransport, queue: str) -> None:
    assert (await transport.stats(queue)).dead == 0
    delivery = await asyncio.wait_for(anext(aiter(transport.consume(queue))), 5)
    assert delivery.body == b"{}" and delivery.attempt == 1
    assert "x-paigeant-dead-letter-reason" not in delivery.headers
    await delivery.ack()
    assert (await transport.stats(dead_letter_queue(queue))).ready == 0
