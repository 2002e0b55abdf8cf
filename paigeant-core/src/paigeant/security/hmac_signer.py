"""The built-in ``hmac`` signer: HS256 with a shared key from ``PAIGEANT_SIGNING_KEY``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar

from ..errors import ConfigurationError
from ..settings import env_str
from ._keys import load_jwk_set, signing_keys_by_kid
from .jws import JwsSigner

__all__ = ["MIN_HMAC_KEY_BYTES", "HmacSigner"]

MIN_HMAC_KEY_BYTES = 32


def _parse_keys(raw: str) -> dict[str, str]:
    keys = {}
    for item in raw.split(","):
        kid, sep, secret = item.strip().partition("=")
        if not sep or not kid or not secret:
            raise ConfigurationError(
                "PAIGEANT_VERIFY_KEYS must be comma-separated kid=secret pairs"
            )
        keys[kid] = secret
    return keys


class HmacSigner(JwsSigner):
    """HS256 over the canonical message bytes; extra verify keys allow key rotation."""

    algorithm: ClassVar[str] = "HS256"
    name = "hmac"

    def __init__(
        self,
        key: str | bytes | None = None,
        *,
        key_id: str | None = None,
        verify_keys: Mapping[str, str | bytes] | None = None,
        jwks: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    ) -> None:
        """Use ``key`` (else ``PAIGEANT_SIGNING_KEY``) under ``key_id`` (else ``PAIGEANT_SIGNING_KEY_ID``).

        Args:
            key: the shared secret that signs (and verifies) under ``key_id``.
            key_id: the ``kid`` written into every signature (default ``default``).
            verify_keys: more secrets accepted when verifying, by kid (key rotation); default
                the ``kid=secret`` pairs of ``PAIGEANT_VERIFY_KEYS``.
            jwks: a JWKS (file path or mapping) whose ``oct`` keys are also accepted, by kid;
                default the file named by ``PAIGEANT_VERIFY_JWKS``.
        """
        secret = key if key is not None else env_str("PAIGEANT_SIGNING_KEY")
        if not secret:
            raise ConfigurationError(
                "the hmac signer needs a key: set PAIGEANT_SIGNING_KEY "
                f"(at least {MIN_HMAC_KEY_BYTES} random bytes, e.g. `openssl rand -hex 32`)"
            )
        secret_bytes = secret.encode() if isinstance(secret, str) else secret
        if len(secret_bytes) < MIN_HMAC_KEY_BYTES:
            raise ConfigurationError(
                f"PAIGEANT_SIGNING_KEY is too short: use at least {MIN_HMAC_KEY_BYTES} bytes"
            )
        kid = key_id or env_str("PAIGEANT_SIGNING_KEY_ID", "default") or "default"
        extra = verify_keys
        if extra is None:
            raw = env_str("PAIGEANT_VERIFY_KEYS")
            extra = _parse_keys(raw) if raw else {}
        keys: dict[str, Any] = {}
        what = "the jwks option" if jwks is not None else "PAIGEANT_VERIFY_JWKS"
        jwks_source = jwks if jwks is not None else env_str("PAIGEANT_VERIFY_JWKS")
        if jwks_source:
            jwk_set = load_jwk_set(jwks_source, what=what)
            keys.update(signing_keys_by_kid(jwk_set, algorithm=self.algorithm, what=what))
        keys.update({k: (v.encode() if isinstance(v, str) else v) for k, v in extra.items()})
        keys[kid] = secret_bytes
        super().__init__(signing_key=secret_bytes, key_id=kid, verify_keys=keys)
