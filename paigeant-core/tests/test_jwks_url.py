"""The jwt provider with a JWKS URL: fetched off the event loop, cached, rotated, rate-limited.

Expired keys are served while one background refresh runs, up to a maximum staleness; the
fetch thread is a daemon, so a hanging issuer never delays interpreter exit.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import logging
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from paigeant import (
    ActivityContext,
    ActivitySpec,
    HmacSigner,
    IdentityProviderUnavailableError,
    InMemoryTransport,
    InvalidTokenError,
    JwtIdentityProvider,
    Worker,
    WorkflowDispatcher,
    activity,
)
from paigeant.errors import ConfigurationError

JWKS_LOGGER = "paigeant.security._jwks_url"


class JwksServer:
    """A loopback HTTP server answering GET with a JWKS: keys swappable, failing, or slow."""

    def __init__(self, keys: list[dict[str, Any]]) -> None:
        self.keys = keys
        self.failing = False
        self.delay = 0.0
        self.requests = 0
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests += 1
                time.sleep(owner.delay)
                if owner.failing:
                    self.send_error(500)
                    return
                body = json.dumps({"keys": owner.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SigningKey:
    """An issuer's Ed25519 key with its ``kid``: its JWK, and tokens signed with it."""

    def __init__(self, kid: str) -> None:
        self.kid = kid
        self.private = Ed25519PrivateKey.generate()
        algorithm = jwt.get_algorithm_by_name("EdDSA")
        self.jwk: dict[str, Any] = {**json.loads(algorithm.to_jwk(self.private.public_key()))}
        self.jwk["kid"] = kid

    def token(self, kid: str | None = None, **claims: Any) -> str:
        now = int(time.time())
        body = {"sub": "user-42", "aud": "paigeant", "iat": now, "exp": now + 600, **claims}
        return jwt.encode(body, self.private, algorithm="EdDSA", headers={"kid": kid or self.kid})


@pytest.fixture
def first_key() -> SigningKey:
    return SigningKey("k1")


@pytest.fixture
def server(first_key: SigningKey) -> Iterator[JwksServer]:
    jwks = JwksServer([first_key.jwk])
    yield jwks
    jwks.close()


def provider(server: JwksServer, **options: Any) -> JwtIdentityProvider:
    return JwtIdentityProvider(jwks=server.url, audience="paigeant", **options)


async def until(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    """Wait until ``condition()`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the background fetch"
        await asyncio.sleep(0.01)


def fetches(caplog: pytest.LogCaptureFixture) -> int:
    """How many JWKS fetches have finished successfully, by their log lines."""
    return sum("fetched the JWKS" in record.getMessage() for record in caplog.records)


async def test_keys_are_fetched_once_shared_and_cached(
    server: JwksServer, first_key: SigningKey
) -> None:
    identity = provider(server)
    token = first_key.token()
    results = await asyncio.gather(*(identity.validate_async(token) for _ in range(20)))
    assert all(claims["sub"] == "user-42" for claims in results)
    assert server.requests == 1, "concurrent validations did not share one fetch"
    assert identity.validate(token)["sub"] == "user-42"  # the sync API uses the same cache
    assert server.requests == 1


async def test_a_rotated_key_is_accepted_after_one_refetch(
    server: JwksServer, first_key: SigningKey
) -> None:
    identity = provider(server, jwks_refetch_interval=0.5)
    assert (await identity.validate_async(first_key.token()))["sub"] == "user-42"
    second_key = SigningKey("k2")
    server.keys = [second_key.jwk]  # the issuer rotates
    rotated = second_key.token()
    with pytest.raises(IdentityProviderUnavailableError, match="fetched again"):
        await identity.validate_async(rotated)  # just fetched: not again yet, retried later
    assert server.requests == 1
    await asyncio.sleep(0.55)
    assert (await identity.validate_async(rotated))["sub"] == "user-42"
    assert server.requests == 2
    await asyncio.sleep(0.55)
    with pytest.raises(InvalidTokenError, match="key id is not in the JWKS"):
        await identity.validate_async(first_key.token())  # refetched: k1 is gone for good
    assert server.requests == 3


async def test_unknown_kids_refetch_at_most_once_per_minute(
    server: JwksServer, first_key: SigningKey
) -> None:
    identity = provider(server)  # the default: at most one refetch per 60 s
    await identity.validate_async(first_key.token())
    forged = [first_key.token(kid=uuid.uuid4().hex) for _ in range(50)]
    outcomes = await asyncio.gather(
        *(identity.validate_async(token) for token in forged), return_exceptions=True
    )
    assert all(isinstance(outcome, IdentityProviderUnavailableError) for outcome in outcomes)
    assert "at most every 60s" in str(outcomes[0])
    assert server.requests == 1, "tokens with unknown kids made the provider refetch"


async def test_keys_expire_and_a_failing_issuer_keeps_the_cached_ones(
    server: JwksServer, first_key: SigningKey, caplog: pytest.LogCaptureFixture
) -> None:
    identity = provider(server, jwks_cache_ttl=0.2)
    token = first_key.token()
    await identity.validate_async(token)
    await asyncio.sleep(0.25)
    server.failing = True
    caplog.set_level(logging.WARNING)
    assert (await identity.validate_async(token))["sub"] == "user-42"
    await until(lambda: "cannot fetch the JWKS" in caplog.text)
    assert server.requests == 2, "expired keys were not fetched again"


async def test_unreachable_jwks_url_is_unavailable_not_invalid(
    server: JwksServer, first_key: SigningKey
) -> None:
    server.failing = True
    identity = provider(server)
    token = first_key.token()
    for validate in (identity.validate_async, identity.validate_for_compensation_async):
        with pytest.raises(IdentityProviderUnavailableError) as info:
            await validate(token)
        assert token not in str(info.value)
    with pytest.raises(IdentityProviderUnavailableError):
        identity.validate(token)  # the sync API too
    assert server.requests == 1, "a failing URL was fetched again at once"


def test_refetch_settings_from_the_environment(
    server: JwksServer, first_key: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAIGEANT_OBO_JWKS_REFETCH_INTERVAL", "0")
    identity = provider(server)
    identity.validate(first_key.token())
    with pytest.raises(InvalidTokenError, match="key id is not in the JWKS"):
        identity.validate(first_key.token(kid="unknown"))  # refetched at once: still unknown
    assert server.requests == 2


async def test_a_slow_jwks_endpoint_does_not_stall_other_steps(
    server: JwksServer, first_key: SigningKey, start_worker: Any
) -> None:
    server.delay = 2.0  # the issuer hangs for two seconds
    finished: dict[str, float] = {}

    @activity("jwks-echo")
    async def echo(ctx: ActivityContext) -> str:
        finished[ctx.correlation_id] = time.monotonic()
        return "ok"

    signer = HmacSigner(b"k" * 32, key_id="t")
    async with InMemoryTransport(visibility_timeout=5.0) as transport:
        worker = Worker(transport, [echo], signer=signer, identity_provider=provider(server))
        start_worker(worker)
        await asyncio.wait_for(worker.ready.wait(), 5)
        dispatcher = WorkflowDispatcher(transport, signer=signer)
        started = time.monotonic()
        waiting = await dispatcher.dispatch_workflow(
            [ActivitySpec(name="jwks-echo")], obo_token=first_key.token()
        )
        await asyncio.sleep(0.1)  # that step now waits for the JWKS
        lag = 0.0

        async def measure_lag() -> None:
            nonlocal lag
            while True:
                before = time.monotonic()
                await asyncio.sleep(0.01)
                lag = max(lag, time.monotonic() - before - 0.01)

        ticker = asyncio.ensure_future(measure_lag())
        others = [
            await dispatcher.dispatch_workflow([ActivitySpec(name="jwks-echo")]) for _ in range(5)
        ]
        results = await asyncio.gather(*(dispatcher.wait_for(cid, timeout=5) for cid in others))
        others_done = time.monotonic() - started
        assert all(result.status == "completed" for result in results)
        assert others_done < 1.5, f"other workflows waited {others_done:.2f}s for the JWKS fetch"
        assert waiting not in finished, "the step needing the JWKS ran before it was fetched"
        result = await dispatcher.wait_for(waiting, timeout=10)
        ticker.cancel()
        await dispatcher.close()
    assert result.status == "completed"
    assert finished[waiting] - started >= 1.9
    assert lag < 0.5, f"the event loop stalled for {lag:.2f}s"
    assert server.requests == 1


async def test_expired_keys_are_served_at_once_while_one_refresh_runs(
    server: JwksServer, first_key: SigningKey, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=JWKS_LOGGER)
    identity = provider(server, jwks_cache_ttl=0.2)
    old_token = first_key.token()
    await identity.validate_async(old_token)
    second_key = SigningKey("k2")
    server.keys = [second_key.jwk]  # what the refresh will bring
    server.delay = 0.6  # and the issuer is slow
    await asyncio.sleep(0.25)  # the cached keys have expired
    started = time.monotonic()
    results = await asyncio.gather(
        *(identity.validate_async(old_token) for _ in range(20)),
        *(asyncio.to_thread(identity.validate, old_token) for _ in range(5)),
    )
    elapsed = time.monotonic() - started
    assert all(claims["sub"] == "user-42" for claims in results)
    assert elapsed < 0.3, f"expired keys waited {elapsed:.2f}s for the slow refresh"
    await until(lambda: fetches(caplog) == 2)
    assert server.requests == 2, "concurrent callers did not share one background refresh"
    assert (await identity.validate_async(second_key.token()))["sub"] == "user-42"
    with pytest.raises(IdentityProviderUnavailableError, match="fetched again"):
        await identity.validate_async(old_token)  # the refresh replaced k1 by k2
    assert server.requests == 2


async def test_a_failing_refresh_serves_stale_keys_until_the_maximum_staleness(
    server: JwksServer, first_key: SigningKey, caplog: pytest.LogCaptureFixture
) -> None:
    identity = provider(server, jwks_cache_ttl=0.2, jwks_max_stale=0.6, jwks_refetch_interval=0)
    token = first_key.token()
    await identity.validate_async(token)
    fetched = time.monotonic()
    server.failing = True
    await asyncio.sleep(0.25)
    assert (await identity.validate_async(token))["sub"] == "user-42"  # stale, refreshing
    await until(lambda: "cannot fetch the JWKS" in caplog.text)
    assert server.requests == 2
    assert identity.validate(token)["sub"] == "user-42"  # refresh failed: still served
    await asyncio.sleep(fetched + 0.9 - time.monotonic())  # past TTL + maximum staleness
    server.delay = 0.3
    started = time.monotonic()
    with pytest.raises(IdentityProviderUnavailableError) as info:
        await identity.validate_async(token)
    assert time.monotonic() - started >= 0.25, "too stale keys did not wait for the fetch"
    message = str(info.value)
    assert "cannot fetch the JWKS from PAIGEANT_OBO_JWKS" in message
    assert "past the 0.8s they may be used" in message
    assert "maximum staleness 0.6s" in message
    with pytest.raises(IdentityProviderUnavailableError, match="maximum staleness"):
        identity.validate(token)  # the sync API too
    server.failing, server.delay = False, 0.0
    assert (await identity.validate_async(token))["sub"] == "user-42"  # fetched afresh


async def test_maximum_staleness_from_the_environment(
    server: JwksServer, first_key: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAIGEANT_OBO_JWKS_MAX_STALE", "0")  # expired keys are never served
    identity = provider(server, jwks_cache_ttl=0.2)
    token = first_key.token()
    await identity.validate_async(token)
    await asyncio.sleep(0.25)
    server.delay = 0.3
    started = time.monotonic()
    assert (await identity.validate_async(token))["sub"] == "user-42"
    assert time.monotonic() - started >= 0.25, "expired keys were served with max stale 0"
    assert server.requests == 2
    monkeypatch.setenv("PAIGEANT_OBO_JWKS_MAX_STALE", "-1")
    with pytest.raises(ConfigurationError, match="maximum staleness"):
        provider(server)


def test_a_hanging_fetch_does_not_delay_interpreter_exit() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # connections are queued but never accepted: the fetch hangs
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/.well-known/jwks.json"
    script = textwrap.dedent(
        f"""
        import asyncio
        from paigeant.security._jwks_url import UrlJwks

        jwks = UrlJwks({url!r}, what="test", timeout=30)

        async def main() -> None:
            try:
                await asyncio.wait_for(jwks.key_async(None), 0.3)
            except TimeoutError:
                print("fetch hanging")

        asyncio.run(main())
        """
    )
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = process.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail("interpreter exit waited for the hanging JWKS fetch")
    finally:
        listener.close()
    assert process.returncode == 0, err
    assert out.strip() == "fetch hanging", err
    assert time.monotonic() - started < 5


class TricklingServer:
    """Answers every GET with headers, then one byte of body at a time, never finishing."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "100000")
                self.end_headers()
                while not owner.stop.is_set():  # each read gets a byte in time: no timeout
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    owner.stop.wait(0.05)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


async def test_a_fetch_that_never_completes_is_given_up_on() -> None:
    """urllib's timeout bounds each read only: a trickling issuer must not hold steps forever."""
    from paigeant.security._jwks_url import UrlJwks

    trickle = TricklingServer()
    try:
        jwks = UrlJwks(trickle.url, what="test", timeout=0.2)  # gives up after 2 x 0.2 + 1 s
        started = time.monotonic()
        with pytest.raises(IdentityProviderUnavailableError, match=r"no complete answer"):
            await jwks.key_async(None)
        waited = time.monotonic() - started
        assert 1.2 <= waited < 3.0, f"waited {waited:.2f}s for a fetch that never completes"
        started = time.monotonic()
        with pytest.raises(IdentityProviderUnavailableError):
            jwks.key(None)  # the blocking lookup is bounded too (within the failure backoff)
        assert time.monotonic() - started < 3.0
    finally:
        trickle.close()
