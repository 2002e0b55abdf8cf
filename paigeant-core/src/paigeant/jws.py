"""Detached compact JWS signing with pinned algorithms and verification keys chosen by ``kid``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import jwt
from jwt.api_jws import PyJWS

from .errors import SignatureError
from .signing import Signer

__all__ = ["JwsSigner"]

_JWS = PyJWS()


class JwsSigner(Signer):
    """A Signer over pyjwt's JWS API: one signing key, several verification keys by ``kid``."""

    #: The only algorithm this signer produces and accepts; the header never chooses it.
    algorithm: ClassVar[str] = ""

    def __init__(self, *, signing_key: Any, key_id: str, verify_keys: Mapping[str, Any]) -> None:
        """Sign with ``signing_key`` under ``key_id``; verify with ``verify_keys`` by kid."""
        self._signing_key = signing_key
        self.key_id = key_id
        self._verify_keys = dict(verify_keys)

    @property
    def key_ids(self) -> list[str]:
        """The key ids this signer accepts when verifying."""
        return sorted(self._verify_keys)

    def sign(self, data: bytes) -> str:
        """Return a detached compact JWS over ``data`` with this signer's ``kid``."""
        return _JWS.encode(
            data,
            self._signing_key,
            algorithm=self.algorithm,
            headers={"kid": self.key_id, "typ": "paigeant+jws"},
            is_payload_detached=True,
        )

    def verify(self, data: bytes, signature: str) -> None:
        """Verify a detached JWS; the algorithm is pinned and the key is looked up by ``kid``."""
        if not signature:
            raise SignatureError("message is not signed")
        try:
            header = jwt.get_unverified_header(signature)
        except jwt.PyJWTError:
            raise SignatureError("signature is not a compact JWS") from None
        if header.get("alg") != self.algorithm:
            raise SignatureError(f"signature algorithm is not {self.algorithm}")
        key = self._verify_keys.get(str(header.get("kid")))
        if key is None:
            raise SignatureError("signature key id is unknown")
        try:
            _JWS.decode_complete(signature, key, algorithms=[self.algorithm], detached_payload=data)
        except jwt.PyJWTError:
            raise SignatureError("signature does not match the message") from None
