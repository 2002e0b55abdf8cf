"""Per-user AWS credentials from STS AssumeRoleWithWebIdentity, tested offline with Stubber."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

boto3 = pytest.importorskip("boto3")
from botocore.stub import Stubber  # noqa: E402

from paigeant import (  # noqa: E402
    ActivityContext,
    ActivitySpec,
    IdentityProvider,
    Worker,
    WorkflowDispatcher,
    activity,
)
from paigeant.errors import (  # noqa: E402
    AwsCredentialsError,
    AwsTokenRejectedError,
    NonRetryableError,
)
from paigeant.security import aws as paigeant_aws  # noqa: E402
from paigeant.security.aws import assume_web_identity  # noqa: E402
from paigeant.transports.inmemory import InMemoryTransport  # noqa: E402

ROLE = "arn:aws:iam::123456789012:role/paigeant-user"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"
CREDENTIALS = {
    "AccessKeyId": "ASIAEXAMPLEKEY000001",
    "SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "SessionToken": "session-token-example",
    "Expiration": datetime.now(UTC) + timedelta(hours=1),
}


def sts_client() -> Any:
    """An STS client whose unstubbed calls could only reach a closed loopback port."""
    return boto3.client(
        "sts",
        region_name="eu-west-1",
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="unused",
        aws_secret_access_key="unused",
    )


def expect_call(stubber: Stubber, **overrides: Any) -> None:
    params = {
        "RoleArn": ROLE,
        "RoleSessionName": "paigeant-wf-1",
        "WebIdentityToken": TOKEN,
        "DurationSeconds": 900,
        **overrides,
    }
    stubber.add_response(
        "assume_role_with_web_identity",
        {"Credentials": CREDENTIALS, "SubjectFromWebIdentityToken": "alice-1"},
        params,
    )


async def test_returns_a_session_with_the_temporary_credentials() -> None:
    client = sts_client()
    with Stubber(client) as stubber:
        expect_call(stubber)
        session = await assume_web_identity(
            TOKEN,
            ROLE,
            session_name="paigeant-wf-1",
            duration_seconds=900,
            region_name="eu-west-1",
            sts_client=client,
        )
        stubber.assert_no_pending_responses()
    assert isinstance(session, boto3.Session)
    frozen = session.get_credentials().get_frozen_credentials()
    assert frozen.access_key == CREDENTIALS["AccessKeyId"]
    assert frozen.secret_key == CREDENTIALS["SecretAccessKey"]
    assert frozen.token == CREDENTIALS["SessionToken"]
    assert session.region_name == "eu-west-1"


async def test_session_name_is_made_valid() -> None:
    client = sts_client()
    with Stubber(client) as stubber:
        expect_call(stubber, RoleSessionName="user-alice@example.com-x" + "y" * 40)
        await assume_web_identity(
            TOKEN,
            ROLE,
            session_name="user:alice@example.com/x" + "y" * 60,
            duration_seconds=900,
            sts_client=client,
        )
        stubber.assert_no_pending_responses()


@pytest.mark.parametrize(
    ("code", "error_type"),
    [
        ("InvalidIdentityToken", AwsTokenRejectedError),
        ("ExpiredTokenException", AwsTokenRejectedError),
        ("IDPRejectedClaim", AwsTokenRejectedError),
        ("AccessDenied", AwsTokenRejectedError),
        ("IDPCommunicationError", AwsCredentialsError),
        ("Throttling", AwsCredentialsError),
    ],
)
async def test_sts_errors_map_to_paigeant_errors(
    code: str, error_type: type[Exception], caplog: pytest.LogCaptureFixture
) -> None:
    client = sts_client()
    with Stubber(client) as stubber:
        stubber.add_client_error(
            "assume_role_with_web_identity",
            service_error_code=code,
            service_message=f"rejected {TOKEN}",  # even if STS echoed it, it is scrubbed
            http_status_code=400,
        )
        with caplog.at_level(logging.DEBUG), pytest.raises(error_type) as info:
            await assume_web_identity(TOKEN, ROLE, session_name="s1", sts_client=client)
    error = info.value
    assert isinstance(error, AwsCredentialsError)
    assert error.code == code
    assert type(error) is error_type  # transient errors stay retryable
    assert isinstance(error, NonRetryableError) == (error_type is AwsTokenRejectedError)
    assert code in str(error) and ROLE in str(error)
    assert TOKEN not in str(error)
    assert error.__cause__ is None and error.__suppress_context__
    assert all(TOKEN not in record.getMessage() for record in caplog.records)


async def test_no_token_is_a_clear_error() -> None:
    with pytest.raises(AwsTokenRejectedError, match="no on-behalf-of token"):
        await assume_web_identity(None, ROLE, session_name="s1", sts_client=sts_client())


async def test_missing_boto3_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)
    with pytest.raises(ImportError, match=r"pip install 'paigeant-core\[aws\]'"):
        await assume_web_identity(TOKEN, ROLE, session_name="s1")


@activity("aws-list-buckets")
async def list_buckets(ctx: ActivityContext) -> dict[str, Any]:
    session = await ctx.assume_web_identity(ROLE, duration_seconds=900)
    frozen = session.get_credentials().get_frozen_credentials()
    return {"access_key": frozen.access_key}


async def test_activity_context_assumes_the_role_with_the_workflow_token(
    monkeypatch: pytest.MonkeyPatch, start_worker: Any
) -> None:
    client = sts_client()
    created: list[str | None] = []

    def fake_client(service: str, region_name: str | None = None) -> Any:
        assert service == "sts"
        created.append(region_name)
        return client

    monkeypatch.setattr(paigeant_aws, "_require_boto3", lambda: _Boto3With(fake_client))

    class AnyProvider(IdentityProvider):
        def validate(self, token: str) -> dict[str, Any]:
            return {"sub": "alice"}

    transport = InMemoryTransport(visibility_timeout=2.0)
    with Stubber(client) as stubber:
        async with transport:
            start_worker(Worker(transport, [list_buckets], identity_provider=AnyProvider()))
            expect_call(stubber)
            dispatcher = WorkflowDispatcher(transport)
            cid = await dispatcher.dispatch_workflow(
                [ActivitySpec(name="aws-list-buckets")], obo_token=TOKEN, correlation_id="wf-1"
            )
            result = await dispatcher.wait_for(cid, timeout=10)
            await dispatcher.close()
        stubber.assert_no_pending_responses()
    assert result.status == "completed", result.error
    assert result.output == {"access_key": CREDENTIALS["AccessKeyId"]}


class _Boto3With:
    """boto3 with its ``client`` factory replaced; ``Session`` is the real one."""

    def __init__(self, client_factory: Any) -> None:
        self.client = client_factory
        self.Session = boto3.Session
