"""The built-in ``jwt`` identity provider: keys, pinned algorithms, claims checks, safe reasons."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from paigeant.errors import ConfigurationError, InvalidTokenError
from paigeant.plugins import get_identity_provider
from paigeant.runtime.identity_choice import resolve_identity_provider
from paigeant.security.jwt_identity import JwtIdentityProvider

SECRET = "obo-shared-secret-" + "0123456789abcdef" * 3


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "sub": "user-42",
        "iss": "https://idp.example",
        "aud": "paigeant",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def hs_token(secret: str = SECRET, **overrides: Any) -> str:
    return jwt.encode(claims(**overrides), secret, algorithm="HS256")


def pem(key: Any) -> bytes:
    data: bytes = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    return data


def jwk(key: Any, kid: str) -> dict[str, Any]:
    algorithm = jwt.get_algorithm_by_name(
        "EdDSA" if isinstance(key, Ed25519PrivateKey) else "ES256"
    )
    data: dict[str, Any] = json.loads(algorithm.to_jwk(key.public_key()))
    return {**data, "kid": kid}


def secret_provider(**options: Any) -> JwtIdentityProvider:
    defaults: dict[str, Any] = {
        "secret": SECRET,
        "issuer": "https://idp.example",
        "audience": "paigeant",
    }
    return JwtIdentityProvider(**{**defaults, **options})


def rejects(provider: JwtIdentityProvider, token: str, reason: str) -> str:
    with pytest.raises(InvalidTokenError) as info:
        provider.validate(token)
    message = str(info.value)
    assert reason in message
    assert not token or token not in message
    for part in token.split("."):
        if len(part) > 8:
            assert part not in message
    return message


def test_valid_token_gives_its_claims() -> None:
    got = secret_provider().validate(hs_token())
    assert got["sub"] == "user-42"
    assert got["aud"] == "paigeant"


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"exp": int(time.time()) - 3600}, "token has expired"),
        ({"nbf": int(time.time()) + 3600}, "not yet valid"),
        ({"aud": "someone-else"}, "audience is not accepted (expected paigeant)"),
        ({"iss": "https://evil.example"}, "issuer is not accepted (expected https://idp.example)"),
        ({"exp": None}, "lacks the required 'exp' claim"),
        ({"aud": None}, "lacks the required 'aud' claim"),
        ({"iss": None}, "lacks the required 'iss' claim"),
    ],
)
def test_claims_failures_are_reasoned(overrides: dict[str, Any], reason: str) -> None:
    rejects(secret_provider(), hs_token(**overrides), reason)


def test_forged_malformed_and_unpinned_tokens_are_rejected() -> None:
    provider = secret_provider()
    rejects(provider, hs_token(secret="another-secret-of-enough-length-xx"), "signature does not")
    rejects(provider, "not-a-jwt", "malformed")
    rejects(provider, "aaaaaaaaaa.bbbbbbbbbbbb.cccccccccccc", "malformed")
    rejects(provider, "", "empty")
    unsigned = jwt.encode(claims(), None, algorithm="none")
    rejects(provider, unsigned, "algorithm is not accepted")
    hs512 = jwt.encode(claims(), SECRET, algorithm="HS512")
    rejects(provider, hs512, "algorithm is not accepted (accepted: HS256)")
    valid = hs_token()
    head, _, signature = valid.split(".")
    tampered_claims = jwt.utils.base64url_encode(json.dumps(claims(sub="admin")).encode()).decode()
    rejects(provider, f"{head}.{tampered_claims}.{signature}", "signature does not verify")


def test_leeway_tolerates_small_clock_skew(monkeypatch: pytest.MonkeyPatch) -> None:
    just_expired = hs_token(exp=int(time.time()) - 5)
    assert secret_provider().validate(just_expired)["sub"] == "user-42"  # default leeway 30 s
    monkeypatch.setenv("PAIGEANT_OBO_LEEWAY", "0")
    rejects(secret_provider(), just_expired, "expired")
    monkeypatch.setenv("PAIGEANT_OBO_LEEWAY", "soon")
    with pytest.raises(ConfigurationError, match="PAIGEANT_OBO_LEEWAY"):
        secret_provider()
    with pytest.raises(ConfigurationError, match="negative"):
        secret_provider(leeway=-1)


def test_audience_list_and_unset_audience(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAIGEANT_OBO_SECRET", SECRET)
    monkeypatch.setenv("PAIGEANT_OBO_AUDIENCE", "api-a, paigeant")
    monkeypatch.setenv("PAIGEANT_OBO_ISSUER", "https://idp.example")
    provider = JwtIdentityProvider()
    assert provider.validate(hs_token())["aud"] == "paigeant"
    assert provider.validate(hs_token(aud=["other", "api-a"]))["sub"] == "user-42"
    monkeypatch.delenv("PAIGEANT_OBO_AUDIENCE")
    rejects(JwtIdentityProvider(), hs_token(), "PAIGEANT_OBO_AUDIENCE is not set")
    assert JwtIdentityProvider().validate(hs_token(aud=None))["sub"] == "user-42"


def test_compensation_accepts_an_expired_but_genuine_token() -> None:
    provider = secret_provider(leeway=0)
    expired = hs_token(exp=int(time.time()) - 3600)
    assert provider.validate_for_compensation(expired)["sub"] == "user-42"
    with pytest.raises(InvalidTokenError, match="signature"):
        provider.validate_for_compensation(hs_token(secret="x" * 40, exp=int(time.time()) - 9))
    with pytest.raises(InvalidTokenError, match="audience"):
        provider.validate_for_compensation(hs_token(aud="other"))


# -- key sources ---------------------------------------------------------------------------


def test_pem_public_key_text_or_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    token = jwt.encode(claims(), key, algorithm="ES256")
    provider = JwtIdentityProvider(public_key=pem(key), audience="paigeant")
    assert provider.validate(token)["sub"] == "user-42"
    path = tmp_path / "idp.pem"
    path.write_bytes(pem(key))
    monkeypatch.setenv("PAIGEANT_OBO_PUBLIC_KEY", str(path))
    monkeypatch.setenv("PAIGEANT_OBO_AUDIENCE", "paigeant")
    assert get_identity_provider("jwt").validate(token)["sub"] == "user-42"
    resolved = resolve_identity_provider()
    assert isinstance(resolved, JwtIdentityProvider)


def test_rs256_and_key_confusion_with_the_public_key() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    provider = JwtIdentityProvider(public_key=pem(key), audience="paigeant")
    assert provider.validate(jwt.encode(claims(), key, algorithm="RS256"))["sub"] == "user-42"
    # HS256 keyed with the public PEM: refused before any key is used.
    import base64
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64(json.dumps(claims()).encode())
    mac = hmac.new(pem(key), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    rejects(provider, f"{header}.{payload}.{b64(mac)}", "algorithm is not accepted")
    other = ec.generate_private_key(ec.SECP256R1())
    rejects(provider, jwt.encode(claims(), other, algorithm="ES256"), "accepted: RS256")


def test_jwks_file_by_kid_with_rotation(tmp_path: Path) -> None:
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk(old, "old")]}))
    provider = JwtIdentityProvider(jwks=str(path), audience="paigeant")
    token_old = jwt.encode(claims(), old, algorithm="EdDSA", headers={"kid": "old"})
    token_new = jwt.encode(claims(), new, algorithm="EdDSA", headers={"kid": "new"})
    assert provider.validate(token_old)["sub"] == "user-42"
    rejects(provider, token_new, "key id is not in the JWKS")
    # The identity provider publishes its new key: the file is re-read on an unknown kid.
    path.write_text(json.dumps({"keys": [jwk(old, "old"), jwk(new, "new")]}))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert provider.validate(token_new)["sub"] == "user-42"
    # A key with the right kid but another key's signature does not verify.
    swapped = jwt.encode(claims(), new, algorithm="EdDSA", headers={"kid": "old"})
    rejects(provider, swapped, "signature does not verify")
    no_kid = jwt.encode(claims(), new, algorithm="EdDSA")
    rejects(provider, no_kid, "no key id and the JWKS holds several keys")


def test_jwks_file_with_a_single_key_accepts_tokens_without_kid(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk(key, "only")]}))
    provider = JwtIdentityProvider(jwks=str(path), audience="paigeant")
    assert provider.validate(jwt.encode(claims(), key, algorithm="ES256"))["sub"] == "user-42"


# -- configuration -------------------------------------------------------------------------


def test_configuration_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="exactly one key source"):
        JwtIdentityProvider()
    monkeypatch.setenv("PAIGEANT_OBO_SECRET", SECRET)
    monkeypatch.setenv("PAIGEANT_OBO_JWKS", str(tmp_path / "jwks.json"))
    with pytest.raises(ConfigurationError, match="got jwks, secret") as info:
        JwtIdentityProvider()
    assert SECRET not in str(info.value)
    with pytest.raises(ConfigurationError, match="'none' is never accepted"):
        JwtIdentityProvider(secret=SECRET, algorithms="HS256,none")
    with pytest.raises(ConfigurationError, match="key-confusion"):
        JwtIdentityProvider(secret=SECRET, algorithms=["RS256"])
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(ConfigurationError, match="key-confusion"):
        JwtIdentityProvider(public_key=pem(key), algorithms="ES256,HS256")
    with pytest.raises(ConfigurationError, match="not a PEM public key"):
        JwtIdentityProvider(public_key="-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----")
    with pytest.raises(ConfigurationError, match="cannot read the JWKS file"):
        JwtIdentityProvider(jwks=str(tmp_path / "missing.json"))
    with pytest.raises(ConfigurationError, match="http"):
        JwtIdentityProvider(jwks="ftp://example.invalid/jwks.json")


def test_algorithms_are_pinned_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    monkeypatch.setenv("PAIGEANT_OBO_ALGORITHMS", "ES256")
    provider = JwtIdentityProvider(public_key=pem(key), audience="paigeant")
    assert provider.algorithms == ["ES256"]
    assert JwtIdentityProvider(public_key=pem(key)).algorithms == ["ES256"]
    monkeypatch.delenv("PAIGEANT_OBO_ALGORITHMS")
    # A PEM key narrows the defaults to what it can verify; a JWKS keeps them (keys vary).
    assert JwtIdentityProvider(public_key=pem(key)).algorithms == ["ES256"]
    assert JwtIdentityProvider(secret=SECRET).algorithms == ["HS256"]
    with pytest.raises(ConfigurationError, match="none of the pinned algorithms"):
        JwtIdentityProvider(public_key=pem(key), algorithms="RS256")


def test_jwks_keeps_the_default_algorithms(tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk(Ed25519PrivateKey.generate(), "a")]}))
    assert JwtIdentityProvider(jwks=str(path)).algorithms == ["RS256", "ES256", "EdDSA"]


def test_no_provider_without_configuration_and_env_selection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert resolve_identity_provider() is None
    monkeypatch.setenv("PAIGEANT_OBO_SECRET", SECRET)
    assert isinstance(resolve_identity_provider(), JwtIdentityProvider)
    monkeypatch.setenv("PAIGEANT_IDENTITY_PROVIDER", "jwt")
    assert isinstance(resolve_identity_provider(), JwtIdentityProvider)
