"""The built-in ``ed25519`` signer: EdDSA with a private key to sign and public keys to verify."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)

from ..errors import ConfigurationError
from ..settings import env_str
from ._keys import b64url, jwk_thumbprint, load_jwk_set, read_pem, signing_keys_by_kid
from .jws import JwsSigner

__all__ = ["Ed25519Signer", "main", "public_jwk"]

PrivateKeyInput = str | bytes | Ed25519PrivateKey
PublicKeyInput = str | bytes | Ed25519PublicKey


def public_jwk(key: Ed25519PublicKey | Ed25519PrivateKey, kid: str | None = None) -> dict[str, str]:
    """Return the public JWK of ``key`` (kid: ``kid``, else its RFC 7638 thumbprint)."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    members = {
        "crv": "Ed25519",
        "kty": "OKP",
        "x": b64url(public.public_bytes(Encoding.Raw, PublicFormat.Raw)),
    }
    return {**members, "alg": "EdDSA", "use": "sig", "kid": kid or jwk_thumbprint(members)}


def _load_private(value: PrivateKeyInput, what: str) -> Ed25519PrivateKey:
    if isinstance(value, Ed25519PrivateKey):
        return value
    pem = read_pem(value, what=what)
    try:
        key = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise ConfigurationError(
            f"{what} is not an unencrypted PEM private key "
            "(generate one with `openssl genpkey -algorithm ed25519`)"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigurationError(f"{what} is a {type(key).__name__}, not an Ed25519 private key")
    return key


def _load_public(value: PublicKeyInput, what: str) -> Ed25519PublicKey:
    if isinstance(value, Ed25519PublicKey):
        return value
    pem = read_pem(value, what=what)
    try:
        key = load_pem_public_key(pem)
    except (ValueError, TypeError):
        raise ConfigurationError(f"{what} is not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigurationError(f"{what} is a {type(key).__name__}, not an Ed25519 public key")
    return key


def _is_ed25519(key: Any) -> bool:
    return isinstance(key, Ed25519PublicKey | Ed25519PrivateKey)


class Ed25519Signer(JwsSigner):
    """EdDSA (Ed25519) over the canonical message bytes; public keys by kid verify (rotation)."""

    algorithm: ClassVar[str] = "EdDSA"
    name = "ed25519"

    def __init__(
        self,
        private_key: PrivateKeyInput | None = None,
        *,
        key_id: str | None = None,
        verify_keys: Mapping[str, PublicKeyInput] | None = None,
        jwks: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    ) -> None:
        """Sign with ``private_key`` (else ``PAIGEANT_SIGNING_PRIVATE_KEY``); verify by kid.

        Args:
            private_key: PEM text, a PEM file path or a key object; None (and the variable
                unset) makes a verify-only signer, whose ``sign`` raises ConfigurationError.
            key_id: the ``kid`` of signatures; else ``PAIGEANT_SIGNING_KEY_ID``, else the
                RFC 7638 thumbprint of the public key.
            verify_keys: public keys (PEM text, PEM file path or key object) accepted by kid.
            jwks: a JWKS (file path or mapping) whose Ed25519 keys are accepted by kid;
                default the file named by ``PAIGEANT_VERIFY_JWKS``.
        """
        keys: dict[str, Any] = {}
        what = "the jwks option" if jwks is not None else "PAIGEANT_VERIFY_JWKS"
        jwks_source = jwks if jwks is not None else env_str("PAIGEANT_VERIFY_JWKS")
        if jwks_source:
            found = signing_keys_by_kid(
                load_jwk_set(jwks_source, what=what),
                algorithm=self.algorithm,
                what=what,
                accept=_is_ed25519,
            )
            keys.update({kid: _public(key) for kid, key in found.items()})
        for name, value in (verify_keys or {}).items():
            keys[name] = _load_public(value, f"verify key {name!r}")
        source = private_key
        setting = "the private_key option"
        if source is None:
            source = env_str("PAIGEANT_SIGNING_PRIVATE_KEY")
            setting = "PAIGEANT_SIGNING_PRIVATE_KEY"
        signing_key: Ed25519PrivateKey | None = None
        kid: str | None = key_id or env_str("PAIGEANT_SIGNING_KEY_ID")
        if source is not None:
            signing_key = _load_private(source, setting)
            kid = public_jwk(signing_key, kid)["kid"]
            keys[kid] = signing_key.public_key()
        if signing_key is None and not keys:
            raise ConfigurationError(
                "the ed25519 signer needs PAIGEANT_SIGNING_PRIVATE_KEY (an Ed25519 PEM key, "
                "text or file path, to sign) and/or PAIGEANT_VERIFY_JWKS (a JWKS file of public "
                "keys, to verify)"
            )
        super().__init__(signing_key=signing_key, key_id=kid or "", verify_keys=keys)

    def public_jwks(self) -> dict[str, list[dict[str, str]]]:
        """Return the JWKS of every public key this signer verifies with (safe to publish)."""
        return {"keys": [public_jwk(key, kid) for kid, key in sorted(self._verify_keys.items())]}


def _public(key: Ed25519PublicKey | Ed25519PrivateKey) -> Ed25519PublicKey:
    return key.public_key() if isinstance(key, Ed25519PrivateKey) else key


def main(argv: Sequence[str] | None = None) -> int:
    """Print the public JWKS of a PEM private key: ``python -m paigeant.ed25519_signer KEY.pem``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) not in (1, 2):
        sys.stderr.write("usage: python -m paigeant.ed25519_signer PRIVATE_KEY.pem [KID]\n")
        return 2
    key = _load_private(args[0], args[0])
    kid = args[1] if len(args) == 2 else None
    sys.stdout.write(json.dumps({"keys": [public_jwk(key, kid)]}, indent=2) + "\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
