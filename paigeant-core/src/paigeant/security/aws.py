"""Per-user AWS credentials: STS AssumeRoleWithWebIdentity with the workflow's OBO token.

Needs the optional extra ``pip install 'paigeant-core[aws]'`` (boto3).
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import TYPE_CHECKING, Any

from ..errors import AwsCredentialsError, AwsTokenRejectedError

if TYPE_CHECKING:
    import boto3

__all__ = ["TOKEN_REJECTED_CODES", "assume_web_identity"]

logger = logging.getLogger(__name__)

#: STS error codes meaning the token (or the role's trust in it) was refused: no retry helps.
TOKEN_REJECTED_CODES = frozenset(
    {
        "InvalidIdentityToken",
        "InvalidIdentityTokenException",
        "ExpiredTokenException",
        "ExpiredToken",
        "IDPRejectedClaim",
        "IDPRejectedClaimException",
        "AccessDenied",
    }
)

_SESSION_NAME_INVALID = re.compile(r"[^\w+=,.@-]")


def _require_boto3() -> Any:
    try:
        import boto3
    except ImportError:
        raise ImportError(
            "assume_web_identity needs boto3, which is optional: pip install 'paigeant-core[aws]'"
        ) from None
    return boto3


def _session_name(name: str) -> str:
    """Make ``name`` a valid RoleSessionName (2-64 characters of ``[\\w+=,.@-]``)."""
    cleaned = _SESSION_NAME_INVALID.sub("-", name)[:64]
    return cleaned if len(cleaned) >= 2 else f"paigeant-{cleaned}"


def _scrub(text: str, token: str) -> str:
    return text.replace(token, "[token]") if token else text


async def assume_web_identity(
    token: str | None,
    role_arn: str,
    *,
    session_name: str,
    duration_seconds: int = 3600,
    region_name: str | None = None,
    sts_client: Any = None,
) -> boto3.Session:
    """Return a boto3 Session holding temporary credentials for ``role_arn`` assumed with ``token``.

    STS is called in a thread (boto3 is synchronous). The token is never logged nor put in
    error messages.

    Args:
        token: the workflow's on-behalf-of token (an OIDC JWT the role trusts).
        role_arn: the role to assume.
        session_name: the RoleSessionName (invalid characters become ``-``).
        duration_seconds: lifetime of the credentials (900 to the role's maximum).
        region_name: region of the returned Session (default: boto3's configuration).
        sts_client: an STS client to use instead of a new one (tests, custom endpoints).

    Raises:
        ImportError: boto3 is not installed (``pip install 'paigeant-core[aws]'``).
        AwsTokenRejectedError: there is no token, or STS rejected it (invalid, expired,
            claims refused, access denied); not retried.
        AwsCredentialsError: STS could not be reached or failed otherwise; retried.
    """
    boto3_module = _require_boto3()
    if not token:
        raise AwsTokenRejectedError(
            "the workflow has no on-behalf-of token: dispatch it with obo_token=... to assume "
            "an AWS role on behalf of its user"
        )
    name = _session_name(session_name)

    def call() -> Any:
        client = sts_client or boto3_module.client("sts", region_name=region_name)
        return client.assume_role_with_web_identity(
            RoleArn=role_arn,
            RoleSessionName=name,
            WebIdentityToken=token,
            DurationSeconds=duration_seconds,
        )

    from botocore.exceptions import BotoCoreError, ClientError

    try:
        response = await asyncio.to_thread(call)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        message = _scrub(str(error.get("Message", "")), token)
        text = f"STS AssumeRoleWithWebIdentity for {role_arn} failed: {code}: {message}"
        logger.warning("%s", text)
        if code in TOKEN_REJECTED_CODES:
            raise AwsTokenRejectedError(text, code=code) from None
        raise AwsCredentialsError(text, code=code) from None
    except BotoCoreError as exc:
        text = _scrub(f"cannot call STS for {role_arn}: {type(exc).__name__}: {exc}", token)
        logger.warning("%s", text)
        raise AwsCredentialsError(text) from None
    credentials = response["Credentials"]
    logger.info("assumed %s as session %s", role_arn, name)
    session: boto3.Session = boto3_module.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=region_name,
    )
    return session
