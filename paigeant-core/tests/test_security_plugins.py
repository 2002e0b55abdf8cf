"""Third-party signers and identity providers plug in through the same hooks as the built-ins."""

from __future__ import annotations

import hashlib
import hmac
import importlib.metadata
import sys
import types
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from paigeant import (
    ActivityContext,
    ActivitySpec,
    IdentityProvider,
    Signer,
    Worker,
    WorkflowDispatcher,
    activity,
    get_identity_provider,
    get_signer,
    hookimpl,
    plugins,
)
from paigeant.errors import InvalidTokenError, SignatureError
from paigeant.runtime.identity_choice import resolve_identity_provider
from paigeant.runtime.signer_choice import resolve_signer
from paigeant.transports.inmemory import InMemoryTransport


class AcmeSigner(Signer):
    """A stand-in third-party signer (HMAC-SHA256 in its own format)."""

    name = "acme"

    def __init__(self, key: bytes = b"acme-key") -> None:
        self.key = key

    def sign(self, data: bytes) -> str:
        return "acme:" + hmac.new(self.key, data, hashlib.sha256).hexdigest()

    def verify(self, data: bytes, signature: str) -> None:
        if not hmac.compare_digest(signature, self.sign(data)):
            raise SignatureError("acme signature does not match")


class AcmeIdentity(IdentityProvider):
    """A stand-in third-party identity provider: tokens are ``user:<name>``."""

    name = "acme-idp"

    def __init__(self, realm: str = "acme") -> None:
        self.realm = realm

    def validate(self, token: str) -> Mapping[str, Any]:
        kind, _, user = token.partition(":")
        if kind != "user" or not user:
            raise InvalidTokenError("acme token is malformed")
        return {"sub": user, "realm": self.realm}


class AcmePlugin:
    """What a third-party plugin module holds: hookimpls calling ``register``."""

    @staticmethod
    @hookimpl
    def register_signers(register: Any) -> None:
        register("acme", AcmeSigner)

    @staticmethod
    @hookimpl
    def register_identity_providers(register: Any) -> None:
        register("acme-idp", AcmeIdentity)


@pytest.fixture(autouse=True)
def acme_registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for var in ("PAIGEANT_SIGNER", "PAIGEANT_IDENTITY_PROVIDER", "PAIGEANT_DISABLE_PLUGINS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(importlib.metadata, "distributions", list)
    plugins.reset_plugins()
    plugins.get_plugin_manager().register(AcmePlugin(), name="acme-security")
    yield
    plugins.reset_plugins()


seen_claims: list[dict[str, Any]] = []


@activity("plugin-step")
async def plugin_step(ctx: ActivityContext) -> str:
    seen_claims.append(dict(ctx.user_claims))
    return "ok"


def test_registered_signer_and_provider_are_found_by_name() -> None:
    signer = get_signer("acme", key=b"k2")
    assert isinstance(signer, AcmeSigner) and signer.key == b"k2"
    provider = get_identity_provider("acme-idp", realm="r1")
    assert isinstance(provider, AcmeIdentity)
    assert provider.validate("user:ann") == {"sub": "ann", "realm": "r1"}


def test_environment_selects_the_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAIGEANT_SIGNER", "acme")
    monkeypatch.setenv("PAIGEANT_IDENTITY_PROVIDER", "acme-idp")
    assert isinstance(get_signer(), AcmeSigner)
    assert isinstance(get_identity_provider(), AcmeIdentity)
    assert isinstance(resolve_signer(InMemoryTransport()), AcmeSigner)
    assert isinstance(resolve_identity_provider(), AcmeIdentity)


async def test_a_workflow_runs_with_the_plugins_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, start_worker: Any
) -> None:
    monkeypatch.setenv("PAIGEANT_SIGNER", "acme")
    monkeypatch.setenv("PAIGEANT_IDENTITY_PROVIDER", "acme-idp")
    seen_claims.clear()
    transport = InMemoryTransport(visibility_timeout=1.0)
    async with transport:
        start_worker(Worker(transport, [plugin_step]))
        dispatcher = WorkflowDispatcher(transport)
        assert isinstance(dispatcher.wire.signer, AcmeSigner)
        cid = await dispatcher.dispatch_workflow(
            [ActivitySpec(name="plugin-step")], obo_token="user:ann"
        )
        result = await dispatcher.wait_for(cid, timeout=10)
        bad = await dispatcher.dispatch_workflow(
            [ActivitySpec(name="plugin-step")], obo_token="nobody"
        )
        rejected = await dispatcher.wait_for(bad, timeout=10)
        await dispatcher.close()
    assert result.status == "completed"
    assert seen_claims == [{"sub": "ann", "realm": "acme"}]
    assert rejected.status == "faulted"
    assert rejected.error == (
        "InvalidTokenError: on-behalf-of token rejected: acme token is malformed"
    )


def test_an_entry_point_plugin_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("acme_security_plugin")
    module.register_signers = AcmePlugin.register_signers  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "acme_security_plugin", module)

    class Dist:
        metadata = {"name": "paigeant-acme"}
        version = "1.2.3"
        entry_points = [
            importlib.metadata.EntryPoint(
                "acme-ep", "acme_security_plugin", plugins.ENTRY_POINT_GROUP
            )
        ]

    monkeypatch.setattr(importlib.metadata, "distributions", lambda: [Dist()])
    plugins.reset_plugins()
    assert isinstance(get_signer("acme"), AcmeSigner)
    registration = plugins.registrations("signer")["acme"]
    assert (registration.distribution, registration.version) == ("paigeant-acme", "1.2.3")


def test_builtins_are_listed() -> None:
    infos = {info.name: info for info in plugins.list_plugins()}
    builtin = infos["paigeant.builtin_plugins"]
    assert builtin.distribution == "paigeant-core"
    for entry in ("signer: hmac", "signer: ed25519", "identity provider: jwt"):
        assert entry in builtin.registers
    assert set(infos["acme-security"].registers) == {
        "signer: acme",
        "identity provider: acme-idp",
    }


def test_cli_plugins_lists_the_security_builtins(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from paigeant.cli import app

    monkeypatch.setenv("COLUMNS", "200")
    output = CliRunner().invoke(app, ["plugins"]).output
    for name in ("hmac", "ed25519", "jwt"):
        assert name in output
