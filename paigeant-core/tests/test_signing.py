"""Signers: HS256 and EdDSA over detached JWS, pinned algorithms, key rotation, forged headers."""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from jwt.api_jws import PyJWS

from paigeant.errors import ConfigurationError, SignatureError
from paigeant.plugins import get_signer
from paigeant.security.ed25519_signer import Ed25519Signer, main, public_jwk
from paigeant.security.hmac_signer import HmacSigner
from paigeant.workflow.codec import canonical_json
from paigeant.workflow.wire import SIGNATURE_HEADER, RejectedMessage, Wire

DATA = canonical_json({"b": [1, 2, {"z": "ü"}], "a": "x"})


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def private_pem(key: Ed25519PrivateKey) -> str:
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()


def public_pem(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def detached(payload: bytes, key: Any, alg: str, **headers: Any) -> str:
    """A detached JWS as an attacker would build it, with any header they like."""
    return PyJWS().encode(payload, key, algorithm=alg, headers=headers, is_payload_detached=True)


def raw_jws(header: dict[str, Any], signature: bytes = b"") -> str:
    """A detached compact JWS with an arbitrary header and signature (no library checks)."""
    return f"{b64url(json.dumps(header).encode())}..{b64url(signature)}"


# -- HMAC ----------------------------------------------------------------------------------


def test_hmac_round_trip_and_kid_header() -> None:
    signer = HmacSigner(b"k" * 32, key_id="k1")
    signature = signer.sign(DATA)
    header = jwt.get_unverified_header(signature)
    assert header["alg"] == "HS256"
    assert header["kid"] == "k1"
    assert header["b64"] is False
    assert signature.split(".")[1] == ""  # detached: the payload is not in the signature
    signer.verify(DATA, signature)


def test_hmac_needs_a_long_enough_key(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="PAIGEANT_SIGNING_KEY"):
        HmacSigner()
    monkeypatch.setenv("PAIGEANT_SIGNING_KEY", "short-secret")
    with pytest.raises(ConfigurationError, match="too short") as info:
        HmacSigner()
    assert "short-secret" not in str(info.value)


def test_hmac_key_and_kid_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    key = secrets.token_hex(32)
    monkeypatch.setenv("PAIGEANT_SIGNING_KEY", key)
    monkeypatch.setenv("PAIGEANT_SIGNING_KEY_ID", "2024-06")
    signer = get_signer("hmac")
    assert jwt.get_unverified_header(signer.sign(DATA))["kid"] == "2024-06"
    HmacSigner(key, key_id="2024-06").verify(DATA, signer.sign(DATA))


def test_hmac_rotation_with_verify_keys_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    old, new = b"o" * 32, b"n" * 32
    old_signature = HmacSigner(old, key_id="old").sign(DATA)
    monkeypatch.setenv("PAIGEANT_VERIFY_KEYS", f"old={old.decode()}")
    rotated = HmacSigner(new, key_id="new")
    rotated.verify(DATA, old_signature)  # still accepted during the rotation window
    assert jwt.get_unverified_header(rotated.sign(DATA))["kid"] == "new"
    assert rotated.key_ids == ["new", "old"]
    monkeypatch.setenv("PAIGEANT_VERIFY_KEYS", "")
    with pytest.raises(SignatureError, match="key id is unknown"):
        HmacSigner(new, key_id="new").verify(DATA, old_signature)  # old key retired


def test_hmac_verify_keys_must_be_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAIGEANT_VERIFY_KEYS", "just-a-secret-value-without-kid")
    with pytest.raises(ConfigurationError, match="kid=secret") as info:
        HmacSigner(b"k" * 32)
    assert "just-a-secret" not in str(info.value)


def test_hmac_rotation_with_a_jwks_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = b"o" * 32
    ed_key = Ed25519PrivateKey.generate()
    jwks = {
        "keys": [
            {"kty": "oct", "kid": "old", "k": b64url(old), "alg": "HS256"},
            public_jwk(ed_key, "ed-1"),  # another signer's key in the same file is skipped
            {"kty": "oct", "kid": "enc", "k": b64url(b"e" * 32), "use": "enc"},
        ]
    }
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(jwks))
    monkeypatch.setenv("PAIGEANT_VERIFY_JWKS", str(path))
    signer = HmacSigner(b"n" * 32, key_id="new")
    assert signer.key_ids == ["new", "old"]
    signer.verify(DATA, HmacSigner(old, key_id="old").sign(DATA))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        ("{not json", "not valid JSON"),
        ('{"no": "keys"}', '"keys" list'),
        ('{"keys": []}', "did not contain any keys"),
    ],
)
def test_bad_jwks_files_are_configuration_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str | None, message: str
) -> None:
    path = tmp_path / "jwks.json"
    if content is not None:
        path.write_text(content)
    monkeypatch.setenv("PAIGEANT_VERIFY_JWKS", str(path))
    with pytest.raises(ConfigurationError, match=message):
        HmacSigner(b"k" * 32)


def test_a_jwks_key_that_cannot_be_used_is_not_quoted() -> None:
    secret = b64url(b"s" * 32)
    with pytest.raises(ConfigurationError) as info:
        HmacSigner(b"k" * 32, jwks={"keys": [{"kid": "x", "k": secret}]})  # no kty
    assert secret not in str(info.value)


def test_hmac_verify_keys_as_argument_and_inline_jwks() -> None:
    other = b"x" * 32
    signer = HmacSigner(b"k" * 32, key_id="a", verify_keys={"x": other})
    signer.verify(DATA, HmacSigner(other, key_id="x").sign(DATA))
    inline = json.dumps({"keys": [{"kty": "oct", "kid": "y", "k": b64url(other)}]})
    HmacSigner(b"k" * 32, jwks=inline).verify(DATA, HmacSigner(other, key_id="y").sign(DATA))


# -- Ed25519 -------------------------------------------------------------------------------


def test_ed25519_round_trip_with_thumbprint_kid() -> None:
    key = Ed25519PrivateKey.generate()
    signer = Ed25519Signer(private_pem(key))
    signature = signer.sign(DATA)
    header = jwt.get_unverified_header(signature)
    assert header["alg"] == "EdDSA"
    assert header["kid"] == public_jwk(key)["kid"] == signer.key_id
    signer.verify(DATA, signature)
    assert signer.public_jwks() == {"keys": [public_jwk(key)]}
    assert "d" not in signer.public_jwks()["keys"][0]  # no private material


def test_ed25519_private_key_from_file_in_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = Ed25519PrivateKey.generate()
    path = tmp_path / "signing.pem"
    path.write_text(private_pem(key))
    monkeypatch.setenv("PAIGEANT_SIGNING_PRIVATE_KEY", str(path))
    monkeypatch.setenv("PAIGEANT_SIGNING_KEY_ID", "ed-2024")
    signer = get_signer("ed25519")
    assert isinstance(signer, Ed25519Signer)
    assert jwt.get_unverified_header(signer.sign(DATA))["kid"] == "ed-2024"
    monkeypatch.setenv("PAIGEANT_SIGNING_PRIVATE_KEY", private_pem(key))  # PEM text works too
    get_signer("ed25519").verify(DATA, signer.sign(DATA))


def test_ed25519_verify_only_worker_from_jwks_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    current, previous = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    path = tmp_path / "jwks.json"
    jwks = {"keys": [public_jwk(current, "2024-07"), public_jwk(previous, "2024-06")]}
    path.write_text(json.dumps(jwks))
    monkeypatch.setenv("PAIGEANT_VERIFY_JWKS", str(path))
    verifier = Ed25519Signer()
    assert not verifier.can_sign
    assert verifier.key_ids == ["2024-06", "2024-07"]
    verifier.verify(DATA, Ed25519Signer(current, key_id="2024-07").sign(DATA))
    verifier.verify(DATA, Ed25519Signer(previous, key_id="2024-06").sign(DATA))
    with pytest.raises(ConfigurationError, match="no signing key"):
        verifier.sign(DATA)


def test_ed25519_jwks_keys_without_kid_use_their_thumbprint() -> None:
    key = Ed25519PrivateKey.generate()
    jwk = {k: v for k, v in public_jwk(key).items() if k != "kid"}
    verifier = Ed25519Signer(jwks={"keys": [jwk]})
    verifier.verify(DATA, Ed25519Signer(key).sign(DATA))


def test_ed25519_verify_keys_as_pem() -> None:
    key = Ed25519PrivateKey.generate()
    verifier = Ed25519Signer(verify_keys={"peer": public_pem(key)})
    verifier.verify(DATA, Ed25519Signer(key, key_id="peer").sign(DATA))


def test_ed25519_configuration_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="PAIGEANT_SIGNING_PRIVATE_KEY"):
        Ed25519Signer()
    missing = str(tmp_path / "nope.pem")
    with pytest.raises(ConfigurationError, match="neither PEM text nor") as info:
        Ed25519Signer(missing)
    assert missing not in str(info.value)
    hmac_like = "c2VjcmV0LXZhbHVlLXRoYXQtbG9va3MtbGlrZS1hLWtleQ=="
    monkeypatch.setenv("PAIGEANT_SIGNING_PRIVATE_KEY", hmac_like)
    with pytest.raises(ConfigurationError, match="PAIGEANT_SIGNING_PRIVATE_KEY") as info:
        Ed25519Signer()
    assert hmac_like not in str(info.value)
    from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key

    ec_pem = (
        generate_private_key(SECP256R1())
        .private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        .decode()
    )
    with pytest.raises(ConfigurationError, match="not an Ed25519 private key"):
        Ed25519Signer(ec_pem)
    with pytest.raises(ConfigurationError, match="not a PEM public key"):
        Ed25519Signer(
            verify_keys={"x": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"}
        )


def test_ed25519_jwks_cli_prints_public_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = Ed25519PrivateKey.generate()
    path = tmp_path / "k.pem"
    path.write_text(private_pem(key))
    assert main([str(path), "kid-1"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == {"keys": [public_jwk(key, "kid-1")]}
    assert main([]) == 2


# -- attacks at the signer level -----------------------------------------------------------


@pytest.fixture(params=["hmac", "ed25519"])
def signer(request: pytest.FixtureRequest) -> HmacSigner | Ed25519Signer:
    if request.param == "hmac":
        return HmacSigner(b"k" * 32, key_id="k1")
    return Ed25519Signer(Ed25519PrivateKey.generate(), key_id="k1")


def forged_signatures(signer: HmacSigner | Ed25519Signer) -> dict[str, str]:
    """Signatures an attacker can produce without the key, each of which must be rejected."""
    attacker_ed = Ed25519PrivateKey.generate()
    valid = signer.sign(DATA)
    header_b64, _, sig_b64 = valid.split(".")
    embedded_payload = PyJWS().encode(DATA, b"a" * 32, algorithm="HS256", headers={"kid": "k1"})
    return {
        "empty": "",
        "garbage": "not-a-jws",
        "alg none": raw_jws({"alg": "none", "kid": "k1", "b64": False, "crit": ["b64"]}),
        "alg none, no kid": raw_jws({"alg": "none"}),
        "unknown kid": detached(DATA, b"a" * 32, "HS256", kid="k9")
        if signer.algorithm == "HS256"
        else detached(DATA, attacker_ed, "EdDSA", kid="k9"),
        "known kid, attacker key": detached(DATA, b"a" * 32, "HS256", kid="k1")
        if signer.algorithm == "HS256"
        else detached(DATA, attacker_ed, "EdDSA", kid="k1"),
        "other algorithm": detached(DATA, attacker_ed, "EdDSA", kid="k1")
        if signer.algorithm == "HS256"
        else detached(DATA, b"a" * 32, "HS256", kid="k1"),
        "HS512 downgrade": raw_jws({"alg": "HS512", "kid": "k1", "b64": False, "crit": ["b64"]}),
        "embedded jwk": detached(
            DATA,
            attacker_ed,
            "EdDSA",
            kid="k1",
            jwk=public_jwk(attacker_ed),
            jku="https://attacker.invalid/jwks",
        ),
        "payload not detached": embedded_payload,
        "signature of other data": signer.sign(DATA + b" "),
        "signature bytes flipped": f"{header_b64}..{sig_b64[:-2]}{'AA' if sig_b64[-2:] != 'AA' else 'BB'}",
        "kid is not a string": raw_jws({"alg": signer.algorithm, "kid": 1, "b64": False}),
    }


def test_every_forged_signature_is_rejected(signer: HmacSigner | Ed25519Signer) -> None:
    for name, signature in forged_signatures(signer).items():
        with pytest.raises(SignatureError):
            signer.verify(DATA, signature)
            pytest.fail(f"forged signature accepted: {name}")


def test_hs256_with_the_ed25519_public_key_as_secret_is_rejected() -> None:
    key = Ed25519PrivateKey.generate()
    signer = Ed25519Signer(key, key_id="k1")
    # The classic key-confusion forgery: HMAC keyed with the (public) verification key.
    public_bytes = public_pem(key)
    import hashlib
    import hmac as hmac_module

    header = {"alg": "HS256", "kid": "k1", "b64": False, "crit": ["b64"], "typ": "paigeant+jws"}
    header_b64 = b64url(json.dumps(header, separators=(",", ":")).encode())
    mac = hmac_module.new(public_bytes, header_b64.encode() + b"." + DATA, hashlib.sha256)
    forged = f"{header_b64}..{b64url(mac.digest())}"
    with pytest.raises(SignatureError, match="algorithm is not EdDSA"):
        signer.verify(DATA, forged)


def test_changing_any_byte_breaks_the_signature(signer: HmacSigner | Ed25519Signer) -> None:
    wire = Wire(signer)
    body = canonical_json(
        {"routing_slip": {"itinerary": [{"name": "a"}], "variables": {"n": 1}}, "hop": 3}
    )
    headers = {SIGNATURE_HEADER: signer.sign(body)}
    assert wire.open_body(body, headers) == body
    for index in range(len(body)):
        for replacement in (body[index] ^ 0x01, body[index] ^ 0x20):
            altered = body[:index] + bytes([replacement]) + body[index + 1 :]
            with pytest.raises(RejectedMessage, match=r"^invalid signature"):
                wire.open_body(altered, headers)


def test_reordered_json_keys_still_verify(signer: HmacSigner | Ed25519Signer) -> None:
    wire = Wire(signer)
    value = {"a": 1, "b": {"y": [1, {"q": 2, "p": 3}], "x": "ü"}}
    body = canonical_json(value)
    headers = {SIGNATURE_HEADER: signer.sign(body)}
    reordered = json.dumps({"b": {"x": "ü", "y": [1, {"p": 3, "q": 2}]}, "a": 1}, indent=2)
    assert wire.open_body(reordered.encode(), headers) == body
    reordered_list = json.dumps({"a": 1, "b": {"y": [{"q": 2, "p": 3}, 1], "x": "ü"}})
    with pytest.raises(RejectedMessage):  # list order is content, not formatting
        wire.open_body(reordered_list.encode(), headers)


def test_ed25519_verifies_hmac_signature_never() -> None:
    hmac_signature = HmacSigner(b"k" * 32, key_id="k1").sign(DATA)
    with pytest.raises(SignatureError, match="algorithm is not EdDSA"):
        Ed25519Signer(Ed25519PrivateKey.generate(), key_id="k1").verify(DATA, hmac_signature)


# -- interoperability with pyjwt's JWS API ---------------------------------------------------


def test_signatures_are_exactly_pyjwt_detached_jws(signer: HmacSigner | Ed25519Signer) -> None:
    key = signer._signing_key  # the prepared key, as pyjwt would use it
    expected = PyJWS().encode(
        DATA,
        key,
        algorithm=signer.algorithm,
        headers={"kid": "k1", "typ": "paigeant+jws"},
        is_payload_detached=True,
    )
    assert signer.sign(DATA) == expected  # byte for byte (EdDSA is deterministic, RFC 8032)
    verify_key = key if signer.algorithm == "HS256" else key.public_key()
    decoded = PyJWS().decode_complete(
        signer.sign(DATA), verify_key, algorithms=[signer.algorithm], detached_payload=DATA
    )
    assert decoded["header"]["kid"] == "k1"
    signer.verify(DATA, expected)


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "HS256", "kid": "k1"},  # b64 not false: payload would be base64url
        {"alg": "HS256", "kid": "k1", "b64": False},  # b64 without crit
        {"alg": "HS256", "kid": "k1", "b64": False, "crit": ["b64", "exp"]},  # unknown crit
        {"alg": "HS256", "kid": "k1", "b64": False, "crit": "b64"},
        ["not", "an", "object"],
    ],
)
def test_malformed_headers_are_rejected(header: Any) -> None:
    signer = HmacSigner(b"k" * 32, key_id="k1")
    valid_signature = signer.sign(DATA).split(".")[2]
    with pytest.raises(SignatureError, match="not a compact JWS"):
        signer.verify(DATA, f"{b64url(json.dumps(header).encode())}..{valid_signature}")


def test_signature_encoding_is_strict() -> None:
    signer = HmacSigner(b"k" * 32, key_id="k1")
    header, _, sig = signer.sign(DATA).split(".")
    for bad in (f"{header}..{sig}=", f"{header}..{sig[:10]}+{sig[11:]}", f"{header}..{sig}!"):
        with pytest.raises(SignatureError):
            signer.verify(DATA, bad)
    with pytest.raises(SignatureError, match="not a compact JWS"):
        signer.verify(DATA, f"{'A' * 2000}..{sig}")


def test_a_pem_key_is_refused_as_an_hmac_secret() -> None:
    pem = public_pem(Ed25519PrivateKey.generate())
    with pytest.raises(ConfigurationError, match="cannot be used with HS256") as info:
        HmacSigner(b"k" * 32, verify_keys={"pub": pem})
    assert pem.decode() not in str(info.value)
