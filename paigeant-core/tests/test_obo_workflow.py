"""On-behalf-of tokens end to end: validated by every worker before any activity code runs."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

import jwt
import pytest

from paigeant import (
    ActivityContext,
    ActivitySpec,
    IdentityProvider,
    RetryPolicy,
    Worker,
    WorkflowDispatcher,
    activity,
)
from paigeant.errors import IdentityProviderUnavailableError, InvalidTokenError
from paigeant.security.hmac_signer import HmacSigner
from paigeant.security.jwt_identity import JwtIdentityProvider
from paigeant.transports.inmemory import InMemoryTransport

SECRET = "obo-e2e-secret-" + "fedcba9876543210" * 3
SIGNING_KEY = b"signing-key-for-obo-tests-000000"
seen: list[tuple[str, dict[str, Any], Any]] = []


@pytest.fixture(autouse=True)
def _reset(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (
        "PAIGEANT_IDENTITY_PROVIDER",
        "PAIGEANT_OBO_JWKS",
        "PAIGEANT_OBO_PUBLIC_KEY",
        "PAIGEANT_OBO_SECRET",
        "PAIGEANT_OBO_AUDIENCE",
        "PAIGEANT_OBO_ISSUER",
        "PAIGEANT_OBO_LEEWAY",
    ):
        monkeypatch.delenv(var, raising=False)
    seen.clear()


@activity("obo-reserve")
async def reserve(ctx: ActivityContext) -> dict[str, str]:
    seen.append(("reserve", dict(ctx.user_claims), ctx.has_obo_token))
    wait_until = ctx.arguments.get("wait_until")
    if wait_until:
        await asyncio.sleep(max(0.0, wait_until - time.time()))
    return {"reservation": "r-1"}


@reserve.compensate
async def release(ctx: ActivityContext) -> None:
    seen.append(("release", dict(ctx.user_claims), ctx.output))


@activity("obo-pay", retry=RetryPolicy(max_attempts=2, initial_delay=0.01, max_delay=0.02))
async def pay(ctx: ActivityContext) -> str:
    seen.append(("pay", dict(ctx.user_claims), None))
    return "paid"


PLAN = [ActivitySpec(name="obo-reserve"), ActivitySpec(name="obo-pay")]


def token(**overrides: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": "alice",
        "iss": "https://idp.example",
        "aud": "paigeant",
        "scope": "orders:write",
        "iat": now,
        "exp": now + 600,
    }
    claims.update(overrides)
    return jwt.encode(claims, SECRET, algorithm="HS256")


def provider(**options: Any) -> JwtIdentityProvider:
    return JwtIdentityProvider(
        **{"secret": SECRET, "audience": "paigeant", "issuer": "https://idp.example", **options}
    )


async def run(
    start_worker: Any,
    workers: list[tuple[list[Any], IdentityProvider | None]],
    obo_token: str | None,
    plan: list[ActivitySpec] = PLAN,
) -> Any:
    signer = HmacSigner(SIGNING_KEY, key_id="t")
    transport = InMemoryTransport(visibility_timeout=2.0)
    async with transport:
        for activities, identity in workers:
            start_worker(Worker(transport, activities, signer=signer, identity_provider=identity))
        dispatcher = WorkflowDispatcher(transport, signer=signer)
        cid = await dispatcher.dispatch_workflow(plan, obo_token=obo_token)
        result = await dispatcher.wait_for(cid, timeout=15)
        await dispatcher.close()
        return result


async def test_valid_claims_reach_every_step(start_worker: Any) -> None:
    result = await run(start_worker, [([reserve, pay], provider())], token())
    assert result.status == "completed"
    assert [name for name, _, _ in seen] == ["reserve", "pay"]
    for _, claims, _ in seen:
        assert claims["sub"] == "alice"
        assert claims["scope"] == "orders:write"


async def test_wrong_audience_faults_before_any_activity_code(
    start_worker: Any, caplog: pytest.LogCaptureFixture
) -> None:
    bad = token(aud="someone-else")
    with caplog.at_level(logging.DEBUG):
        result = await run(start_worker, [([reserve, pay], provider())], bad)
    assert result.status == "faulted"
    assert seen == []
    assert result.activity_log == []
    assert result.error == (
        "InvalidTokenError: on-behalf-of token rejected: "
        "token audience is not accepted (expected paigeant)"
    )
    assert result.fault is not None and result.fault.activity == "obo-reserve"
    assert_never_leaked(caplog, result, bad)


async def test_token_rejected_by_a_later_worker_compensates_earlier_steps(
    start_worker: Any, caplog: pytest.LogCaptureFixture
) -> None:
    good_here = token()  # audience "paigeant": the payments worker wants "payments"
    with caplog.at_level(logging.DEBUG):
        result = await run(
            start_worker,
            [([reserve], provider()), ([pay], provider(audience="payments"))],
            good_here,
        )
    assert result.status == "faulted"
    assert "token audience is not accepted (expected payments)" in (result.error or "")
    assert [name for name, _, _ in seen] == ["reserve", "release"]  # pay never ran
    assert result.compensated == ["obo-reserve"]
    release_claims, release_output = seen[1][1], seen[1][2]
    assert release_claims["sub"] == "alice"
    assert release_output == {"reservation": "r-1"}
    assert_never_leaked(caplog, result, good_here)


async def test_token_expiring_mid_workflow_faults_the_next_step_and_compensates(
    start_worker: Any,
) -> None:
    expires = int(time.time()) + 2
    short_lived = token(exp=expires)
    plan = [
        ActivitySpec(name="obo-reserve", arguments={"wait_until": expires + 0.2}),
        ActivitySpec(name="obo-pay"),
    ]
    result = await run(start_worker, [([reserve, pay], provider(leeway=0))], short_lived, plan)
    assert result.status == "faulted"
    assert result.error == "InvalidTokenError: on-behalf-of token rejected: token has expired"
    assert [name for name, _, _ in seen] == ["reserve", "release"]
    assert seen[0][1]["sub"] == "alice"  # valid when the first step started
    # The compensation still knows the user: signature, issuer and audience verified, exp not.
    assert seen[1][1]["sub"] == "alice"
    assert result.compensated == ["obo-reserve"]


async def test_a_token_without_a_configured_provider_faults(start_worker: Any) -> None:
    result = await run(start_worker, [([reserve, pay], None)], token())
    assert result.status == "faulted"
    assert "no identity provider configured" in (result.error or "")
    assert seen == []


async def test_a_workflow_without_token_runs_with_empty_claims(start_worker: Any) -> None:
    result = await run(start_worker, [([reserve, pay], provider())], None)
    assert result.status == "completed"
    assert seen[0] == ("reserve", {}, False)


class FlakyProvider(IdentityProvider):
    """Valid for steps; unavailable, or refusing compensations, as configured."""

    def __init__(self, *, unavailable: bool = False) -> None:
        self.unavailable = unavailable
        self.calls = 0

    def validate(self, token: str) -> Mapping[str, Any]:
        self.calls += 1
        if self.unavailable:
            raise IdentityProviderUnavailableError("JWKS endpoint unreachable")
        return {"sub": "bob"}

    def validate_for_compensation(self, token: str) -> Mapping[str, Any]:
        raise InvalidTokenError("token signature does not verify")


async def test_an_unavailable_provider_is_a_failed_attempt_then_a_fault(start_worker: Any) -> None:
    flaky = FlakyProvider(unavailable=True)
    result = await run(
        start_worker,
        [([reserve], provider()), ([pay], flaky)],
        token(),
    )
    assert result.status == "faulted"
    assert result.fault.error_type == "IdentityProviderUnavailableError"
    assert flaky.calls == 2  # retried per obo-pay's RetryPolicy (2 attempts)
    assert [name for name, _, _ in seen] == ["reserve", "release"]


async def test_a_compensation_whose_token_fails_gets_empty_claims(
    start_worker: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sent = token()
    with caplog.at_level(logging.WARNING):
        result = await run(
            start_worker,
            [([reserve], FlakyProvider()), ([pay], provider(audience="payments"))],
            sent,
        )
    assert result.status == "faulted"
    assert seen[0][1] == {"sub": "bob"}
    assert seen[1][0] == "release" and seen[1][1] == {}
    assert any("compensating with empty user claims" in r.getMessage() for r in caplog.records)
    assert_never_leaked(caplog, result, sent)


def assert_never_leaked(caplog: pytest.LogCaptureFixture, result: Any, sent: str) -> None:
    """Neither the token, its signature, nor the secret appears in logs or in the result."""
    secrets_ = [sent, sent.split(".")[2], SECRET, SIGNING_KEY.decode()]
    texts = [result.model_dump_json()]
    for record in caplog.records:
        texts.append(record.getMessage())
        if record.exc_info:
            texts.append(logging.Formatter().formatException(record.exc_info))
    assert caplog.records, "expected some logging to inspect"
    for text in texts:
        for secret in secrets_:
            assert secret not in text


async def test_claims_reach_an_agents_workflow_dependencies(start_worker: Any) -> None:
    from pydantic_ai import RunContext

    from paigeant.agents import PaigeantAgent, WorkflowDependencies

    agent_claims: list[dict[str, Any]] = []
    agent = PaigeantAgent("test", name="obo-agent", deps_type=WorkflowDependencies)

    @agent.instructions
    def capture(ctx: RunContext[WorkflowDependencies]) -> str:
        agent_claims.append(dict(ctx.deps.user_claims))
        return "Answer briefly."

    result = await run(
        start_worker, [([agent], provider())], token(), [ActivitySpec(name="obo-agent")]
    )
    assert result.status == "completed", result.error
    assert agent_claims and agent_claims[0]["sub"] == "alice"
