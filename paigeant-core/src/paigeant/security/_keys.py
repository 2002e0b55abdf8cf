"""Loading key material for signers and identity providers: PEM text or files, JWKS files."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from jwt import PyJWK, PyJWKSet
from jwt.exceptions import PyJWKError, PyJWKSetError

from ..errors import ConfigurationError

__all__ = [
    "b64url",
    "jwk_thumbprint",
    "load_jwk_set",
    "parse_public_key",
    "read_pem",
    "signing_keys_by_kid",
]

logger = logging.getLogger(__name__)

_PEM_MARKER = "-----BEGIN "


def read_pem(value: str | bytes, *, what: str) -> bytes:
    """Return PEM bytes from PEM text or from the path of a PEM file; ``what`` names the setting.

    Errors name the setting, never the value (it may be key material set the wrong way).
    """
    text = value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value
    if _PEM_MARKER in text:
        return text.replace("\\n", "\n").encode()
    path = Path(text.strip()).expanduser()
    try:
        data = path.read_bytes()
    except (OSError, ValueError) as exc:
        # The value is not echoed: it may be key material pasted in the wrong form.
        reason = exc.strerror if isinstance(exc, OSError) else "not a valid path"
        raise ConfigurationError(
            f"{what} is neither PEM text nor the path of a readable PEM file ({reason})"
        ) from None
    if _PEM_MARKER.encode() not in data:
        raise ConfigurationError(f"{what}: the file it names does not contain a PEM key")
    return data


def load_jwk_set(source: str | os.PathLike[str] | Mapping[str, Any], *, what: str) -> PyJWKSet:
    """Parse a JWKS from a mapping, inline JSON or a JSON file path; errors name ``what``."""
    if isinstance(source, Mapping):
        data: Any = dict(source)
    elif str(source).lstrip().startswith("{"):
        try:
            data = json.loads(str(source))
        except ValueError:
            raise ConfigurationError(f"{what}: the inline JWKS is not valid JSON") from None
    else:
        # Paths are not echoed either: a value set by mistake may be key material.
        path = Path(source).expanduser()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigurationError(
                f"{what}: cannot read the JWKS file it names ({exc.strerror})"
            ) from None
        except ValueError:
            raise ConfigurationError(f"{what}: the JWKS file it names is not valid JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise ConfigurationError(f'{what}: a JWKS is a JSON object with a "keys" list')
    try:
        return PyJWKSet.from_dict(data)
    except PyJWKSetError as exc:  # messages of the set as a whole; they never hold key data
        raise ConfigurationError(f"{what}: {exc}") from None
    except PyJWKError:  # its messages may quote the key: not repeated
        raise ConfigurationError(f"{what}: the JWKS holds a key that cannot be used") from None


def b64url(data: bytes) -> str:
    """Return unpadded base64url text of ``data`` (as JOSE writes it)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwk_thumbprint(members: Mapping[str, str]) -> str:
    """Return the RFC 7638 thumbprint (SHA-256, base64url) of a JWK's required members."""
    canonical = json.dumps(dict(members), sort_keys=True, separators=(",", ":")).encode()
    return b64url(hashlib.sha256(canonical).digest())


def _thumbprint_of(jwk: PyJWK) -> str | None:
    """Thumbprint of an ``oct`` or Ed25519 ``OKP`` key, the kinds paigeant's signers use."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    key = jwk.key
    if isinstance(key, bytes):
        return jwk_thumbprint({"k": b64url(key), "kty": "oct"})
    if isinstance(key, Ed25519PrivateKey):
        key = key.public_key()
    if isinstance(key, Ed25519PublicKey):
        raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
        return jwk_thumbprint({"crv": "Ed25519", "kty": "OKP", "x": b64url(raw)})
    return None


def signing_keys_by_kid(
    jwks: PyJWKSet,
    *,
    algorithm: str,
    what: str,
    accept: Callable[[Any], bool] | None = None,
) -> dict[str, Any]:
    """Return the keys of ``jwks`` usable with ``algorithm``, by kid (RFC 7638 thumbprint if none).

    Keys of another type or algorithm, whose ``use`` is not ``sig``, or refused by ``accept``,
    are skipped: one JWKS file may hold the keys of several signers.
    """
    keys: dict[str, Any] = {}
    for jwk in jwks.keys:
        use = jwk.public_key_use
        usable = jwk.algorithm_name == algorithm and (use is None or use == "sig")
        if not usable or (accept is not None and not accept(jwk.key)):
            logger.debug("%s: skipping a %s key not usable with %s", what, jwk.key_type, algorithm)
            continue
        kid = jwk.key_id or _thumbprint_of(jwk)
        if not kid:
            raise ConfigurationError(f"{what}: every {algorithm} key needs a kid")
        if kid in keys:
            raise ConfigurationError(f"{what}: key id {kid!r} appears twice")
        keys[kid] = jwk.key
    return keys


def parse_public_key(pem: bytes, what: str) -> Any:
    """Load a PEM public key (RSA, EC or Ed25519) for token verification; errors name ``what``."""
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        return load_pem_public_key(pem)
    except (ValueError, TypeError):
        raise ConfigurationError(
            f"{what} is not a PEM public key (a private key or certificate does not belong here)"
        ) from None
