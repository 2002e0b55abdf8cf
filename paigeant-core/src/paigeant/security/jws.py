"""Detached compact JWS signing with pinned algorithms and verification keys chosen by ``kid``.

The serialization is RFC 7515 compact with an unencoded, detached payload (RFC 7797:
``b64: false``, listed in ``crit``), byte for byte what ``jwt.api_jws.PyJWS().encode(data, key,
algorithm=..., headers=..., is_payload_detached=True)`` produces, and verifiable by
``PyJWS().decode_complete(..., detached_payload=data)``. The cryptography is pyjwt's algorithm
objects; keys are prepared once and the fixed header is encoded once, because signing and
verifying happen on every hop.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from collections.abc import Mapping
from typing import Any, ClassVar, NamedTuple

import jwt
from jwt.exceptions import InvalidKeyError

from ..errors import ConfigurationError, SignatureError
from .signer import Signer

__all__ = ["JWS_TYPE", "UNTRUSTED_HEADERS", "JwsSigner"]

#: The ``typ`` header of paigeant signatures.
JWS_TYPE = "paigeant+jws"

#: Header parameters that would let a message name its own key; a verifier never trusts them.
UNTRUSTED_HEADERS = frozenset({"jku", "jwk", "x5u", "x5c"})

#: Critical header extensions a verifier understands (RFC 7515 section 4.1.11).
_UNDERSTOOD_CRIT = frozenset({"b64"})
#: Longest protected header accepted (paigeant's are ~120 characters); bounds the parse cache.
_MAX_HEADER_CHARS = 1024


class _Header(NamedTuple):
    alg: object
    kid: object
    detached: bool
    untrusted: bool
    crit_ok: bool


def _b64url_encode(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _b64url_decode(text: str) -> bytes:
    """Strict base64url (no padding in the input, no characters outside the alphabet)."""
    if "=" in text:
        raise ValueError("padded base64url")
    padded = text + "=" * (-len(text) % 4)
    return base64.b64decode(padded, altchars=b"-_", validate=True)


@functools.lru_cache(maxsize=256)
def _parse_header(segment: str) -> _Header | None:
    """Parse a protected header segment (the same few headers recur on every hop: cached)."""
    try:
        header = json.loads(_b64url_decode(segment))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    if not isinstance(header, dict):
        return None
    crit = header.get("crit", [])
    return _Header(
        alg=header.get("alg"),
        kid=header.get("kid"),
        detached=header.get("b64") is False,
        untrusted=not UNTRUSTED_HEADERS.isdisjoint(header),
        crit_ok=isinstance(crit, list) and "b64" in crit and _UNDERSTOOD_CRIT.issuperset(crit),
    )


class JwsSigner(Signer):
    """A detached-JWS Signer: one signing key, several verification keys by ``kid``."""

    #: The only algorithm this signer produces and accepts; the header never chooses it.
    algorithm: ClassVar[str] = ""

    def __init__(
        self, *, signing_key: Any | None, key_id: str, verify_keys: Mapping[str, Any]
    ) -> None:
        """Sign with ``signing_key`` under ``key_id`` (None: verify only); verify by kid."""
        self._algorithm = jwt.get_algorithm_by_name(self.algorithm)
        self.key_id = key_id
        self._signing_key = None if signing_key is None else self._prepare(signing_key, key_id)
        self._verify_keys = {kid: self._prepare(key, kid) for kid, key in verify_keys.items()}
        header = {"alg": self.algorithm, "b64": False, "crit": ["b64"], "kid": key_id}
        header["typ"] = JWS_TYPE
        self._header = _b64url_encode(
            json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
        )

    def _prepare(self, key: Any, kid: str) -> Any:
        try:
            return self._algorithm.prepare_key(key)
        except (InvalidKeyError, TypeError, ValueError):
            raise ConfigurationError(
                f"key {kid!r} cannot be used with {self.algorithm} (wrong key type)"
            ) from None

    @property
    def can_sign(self) -> bool:
        """Whether this signer holds a signing key (a verify-only signer does not)."""
        return self._signing_key is not None

    @property
    def key_ids(self) -> list[str]:
        """The key ids this signer accepts when verifying."""
        return sorted(self._verify_keys)

    def sign(self, data: bytes) -> str:
        """Return a detached compact JWS over ``data`` with this signer's ``kid``."""
        if self._signing_key is None:
            raise ConfigurationError(
                f"the {self.name or type(self).__name__} signer has no signing key, so it can "
                "only verify; configure its private key to sign messages"
            )
        signature = self._algorithm.sign(self._header + b"." + data, self._signing_key)
        return f"{self._header.decode()}..{_b64url_encode(signature).decode()}"

    def verify(self, data: bytes, signature: str) -> None:
        """Verify a detached JWS; the algorithm is pinned and the key is looked up by ``kid``."""
        if not signature:
            raise SignatureError("message is not signed")
        parts = signature.split(".")
        well_formed = len(parts) == 3 and len(parts[0]) <= _MAX_HEADER_CHARS
        header = _parse_header(parts[0]) if well_formed else None
        if header is None or not header.detached or not header.crit_ok or parts[1]:
            raise SignatureError("signature is not a compact JWS with a detached payload")
        if header.alg != self.algorithm:
            raise SignatureError(f"signature algorithm is not {self.algorithm}")
        if header.untrusted:
            raise SignatureError("signature header embeds a key reference, which is never trusted")
        key = self._verify_keys.get(header.kid) if isinstance(header.kid, str) else None
        if key is None:
            raise SignatureError("signature key id is unknown")
        try:
            raw = _b64url_decode(parts[2])
        except (ValueError, binascii.Error):
            raise SignatureError("signature is not base64url") from None
        if not self._algorithm.verify(parts[0].encode() + b"." + data, key, raw):
            raise SignatureError("signature does not match the message")
