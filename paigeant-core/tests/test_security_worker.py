"""Workers verify before anything else: forged or altered hops are dead-lettered, the rest runs."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Mapping
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

from paigeant import (
    ActivityContext,
    ActivitySpec,
    Worker,
    WorkflowDispatcher,
    activity,
    activity_queue,
    dead_letter_queue,
)
from paigeant.errors import ConfigurationError
from paigeant.security.ed25519_signer import Ed25519Signer
from paigeant.security.hmac_signer import HmacSigner
from paigeant.security.jws import JwsSigner
from paigeant.testing import Receiver
from paigeant.transports.base import DEAD_LETTER_REASON_HEADER
from paigeant.transports.inmemory import InMemoryTransport
from paigeant.workflow.codec import canonical_json
from paigeant.workflow.wire import SIGNATURE_HEADER

calls: list[dict[str, Any]] = []


@activity("sec-charge")
async def charge(ctx: ActivityContext) -> dict[str, Any]:
    calls.append({"step": "sec-charge", **ctx.arguments})
    return {"charged": ctx.arguments.get("amount")}


@activity("sec-ship")
async def ship(ctx: ActivityContext) -> str:
    calls.append({"step": "sec-ship"})
    return "shipped"


@activity("sec-notify")
async def notify(ctx: ActivityContext) -> str:
    calls.append({"step": "sec-notify"})
    return "notified"


ACTIVITIES = [charge, ship, notify]
PLAN = [
    ActivitySpec(name="sec-charge", arguments={"amount": 10}),
    ActivitySpec(name="sec-ship"),
]


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls.clear()


class CrossProcessTransport(InMemoryTransport):
    """An in-memory transport that claims to cross processes, as a broker would."""

    crosses_processes = True


class RecordingTransport(InMemoryTransport):
    """Records every publish (queue, body, headers), forwarded hops included."""

    def __init__(self) -> None:
        super().__init__(visibility_timeout=1.0)
        self.published: list[tuple[str, bytes, dict[str, str]]] = []

    async def publish(
        self,
        queue: str,
        body: bytes,
        *,
        message_id: str,
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
    ) -> None:
        self.published.append((queue, body, dict(headers or {})))
        await super().publish(queue, body, message_id=message_id, headers=headers, delay=delay)


def _ed25519_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(params=["hmac", "ed25519"])
def signer(request: pytest.FixtureRequest) -> JwsSigner:
    if request.param == "hmac":
        return HmacSigner(b"s" * 32, key_id="k1")
    return Ed25519Signer(_ed25519_key(), key_id="k1")


async def intercept_dispatch(
    transport: InMemoryTransport, dispatcher: WorkflowDispatcher, plan: list[ActivitySpec]
) -> tuple[str, bytes, dict[str, str], str]:
    """Dispatch ``plan`` with no worker running and take its first hop off the queue."""
    cid = await dispatcher.dispatch_workflow(plan, variables={"role": "user"}, obo_token=None)
    receiver = Receiver(transport, activity_queue(plan[0].name))
    delivery = await receiver.get()
    assert delivery is not None
    body, headers, message_id = delivery.body, dict(delivery.headers), delivery.message_id
    await delivery.ack()
    await receiver.close()
    return cid, body, headers, message_id


def _edit(body: bytes, change: Callable[[dict[str, Any]], None]) -> bytes:
    message = json.loads(body)
    change(message)
    return canonical_json(message)


def _slip(message: dict[str, Any]) -> dict[str, Any]:
    slip: dict[str, Any] = message["routing_slip"]
    return slip


def _attacker_signature(signer: JwsSigner, body: bytes, kid: str) -> str:
    if signer.algorithm == "HS256":
        return HmacSigner(b"a" * 32, key_id=kid).sign(body)
    return Ed25519Signer(_ed25519_key(), key_id=kid).sign(body)


def _b64url(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


FORGERIES: dict[str, Callable[[JwsSigner, bytes, dict[str, str]], tuple[bytes, dict[str, str]]]] = {
    "unsigned": lambda s, b, h: (b, {k: v for k, v in h.items() if k != SIGNATURE_HEADER}),
    "unknown kid": lambda s, b, h: (b, {**h, SIGNATURE_HEADER: _attacker_signature(s, b, "k9")}),
    "attacker key under our kid": lambda s, b, h: (
        b,
        {**h, SIGNATURE_HEADER: _attacker_signature(s, b, "k1")},
    ),
    "alg none": lambda s, b, h: (
        b,
        {
            **h,
            SIGNATURE_HEADER: _b64url(
                json.dumps({"alg": "none", "kid": "k1", "b64": False, "crit": ["b64"]}).encode()
            )
            + "..",
        },
    ),
    "embedded attacker jwk": lambda s, b, h: (
        b,
        {
            **h,
            SIGNATURE_HEADER: PyJWS().encode(
                b,
                (key := _ed25519_key()),
                algorithm="EdDSA",
                headers={
                    "kid": "k1",
                    "jwk": json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(key.public_key())),
                },
                is_payload_detached=True,
            ),
        },
    ),
    "flipped byte": lambda s, b, h: (b.replace(b'"amount":10', b'"amount":90'), h),
    "arguments": lambda s, b, h: (
        _edit(b, lambda m: _slip(m)["itinerary"][0]["arguments"].update(amount=10_000)),
        h,
    ),
    "itinerary step added": lambda s, b, h: (
        _edit(b, lambda m: _slip(m)["itinerary"].append({"name": "sec-notify"})),
        h,
    ),
    "itinerary step removed": lambda s, b, h: (
        _edit(b, lambda m: _slip(m)["itinerary"].pop()),
        h,
    ),
    "step position": lambda s, b, h: (
        _edit(b, lambda m: _slip(m)["itinerary"].reverse()),
        h,
    ),
    "hop": lambda s, b, h: (_edit(b, lambda m: m.update(hop=7)), h),
    "variables": lambda s, b, h: (
        _edit(b, lambda m: _slip(m)["variables"].update(role="admin")),
        h,
    ),
    "obo token added": lambda s, b, h: (_edit(b, lambda m: m.update(obo_token="eyJ.forged.x")), h),
    "subscriptions redirected": lambda s, b, h: (
        _edit(b, lambda m: _slip(m)["subscriptions"].append({"queue": "attacker", "events": []})),
        h,
    ),
    "fault injected": lambda s, b, h: (
        _edit(
            b,
            lambda m: _slip(m).update(
                fault={"activity": "sec-charge", "error_type": "X", "error": "y", "attempt": 1}
            ),
        ),
        h,
    ),
}


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
async def test_forged_or_altered_hop_is_dead_lettered_and_worker_goes_on(
    signer: JwsSigner, forgery: str, start_worker: Any
) -> None:
    transport = InMemoryTransport(visibility_timeout=1.0)
    async with transport:
        dispatcher = WorkflowDispatcher(transport, signer=signer)
        _, body, headers, message_id = await intercept_dispatch(transport, dispatcher, PLAN)
        forged_body, forged_headers = FORGERIES[forgery](signer, body, headers)
        assert (forged_body, forged_headers) != (body, headers)
        queue = activity_queue("sec-charge")
        await transport.publish(queue, forged_body, message_id=message_id, headers=forged_headers)
        start_worker(Worker(transport, ACTIVITIES, signer=signer))

        async with Receiver(transport, dead_letter_queue(queue)) as dead_letters:
            parked = await dead_letters.get(timeout=5)
            assert parked is not None, "forged message was not dead-lettered"
            assert parked.body == forged_body
            assert parked.headers[DEAD_LETTER_REASON_HEADER].startswith("invalid signature")
            await parked.ack()
        assert calls == []  # no activity code ran

        cid = await dispatcher.dispatch_workflow(PLAN)
        result = await dispatcher.wait_for(cid, timeout=10)
        assert result.status == "completed"
        assert [c["step"] for c in calls] == ["sec-charge", "sec-ship"]
        await dispatcher.close()


async def test_hs256_keyed_with_the_ed25519_public_key_is_dead_lettered(start_worker: Any) -> None:
    key = _ed25519_key()
    signer = Ed25519Signer(key, key_id="k1")
    public = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    transport = InMemoryTransport(visibility_timeout=1.0)
    async with transport:
        dispatcher = WorkflowDispatcher(transport, signer=signer)
        _, body, headers, message_id = await intercept_dispatch(transport, dispatcher, PLAN)
        forged_body = body.replace(b'"amount":10', b'"amount":99')
        header = _b64url(
            json.dumps(
                {"alg": "HS256", "b64": False, "crit": ["b64"], "kid": "k1"},
                separators=(",", ":"),
            ).encode()
        )
        mac = hmac.new(public, header.encode() + b"." + forged_body, hashlib.sha256).digest()
        forged = {**headers, SIGNATURE_HEADER: f"{header}..{_b64url(mac)}"}
        queue = activity_queue("sec-charge")
        await transport.publish(queue, forged_body, message_id=message_id, headers=forged)
        start_worker(Worker(transport, ACTIVITIES, signer=signer))
        async with Receiver(transport, dead_letter_queue(queue)) as dead_letters:
            parked = await dead_letters.get(timeout=5)
            assert parked is not None
            assert parked.headers[DEAD_LETTER_REASON_HEADER].startswith("invalid signature")
        assert calls == []
        await dispatcher.close()


def _reorder(value: Any) -> Any:
    """The same JSON value with every object's keys in reverse order."""
    if isinstance(value, dict):
        return {key: _reorder(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [_reorder(item) for item in value]
    return value


async def test_reordered_json_keys_of_a_valid_hop_still_run(
    signer: JwsSigner, start_worker: Any
) -> None:
    transport = InMemoryTransport(visibility_timeout=1.0)
    async with transport:
        dispatcher = WorkflowDispatcher(transport, signer=signer)
        cid, body, headers, message_id = await intercept_dispatch(transport, dispatcher, PLAN)
        reordered = json.dumps(_reorder(json.loads(body)), indent=1, ensure_ascii=True).encode()
        assert reordered != body
        await transport.publish(
            activity_queue("sec-charge"), reordered, message_id=message_id, headers=headers
        )
        start_worker(Worker(transport, ACTIVITIES, signer=signer))
        result = await dispatcher.wait_for(cid, timeout=10)
        assert result.status == "completed"
        assert result.variables == {"role": "user"}
        assert calls[0] == {"step": "sec-charge", "amount": 10}
        await dispatcher.close()


async def test_every_hop_is_signed_anew(signer: JwsSigner, start_worker: Any) -> None:
    transport = RecordingTransport()
    async with transport:
        start_worker(Worker(transport, ACTIVITIES, signer=signer))
        dispatcher = WorkflowDispatcher(transport, signer=signer)
        plan = [*PLAN, ActivitySpec(name="sec-notify")]
        cid = await dispatcher.dispatch_workflow(plan)
        assert (await dispatcher.wait_for(cid, timeout=10)).status == "completed"
        await dispatcher.close()
    hops = [
        (body, headers)
        for queue, body, headers in transport.published
        if queue in {activity_queue(spec.name) for spec in plan}
    ]
    assert [json.loads(body)["hop"] for body, _ in hops] == [0, 1, 2]
    signatures = [headers[SIGNATURE_HEADER] for _, headers in hops]
    assert len(set(signatures)) == 3
    for body, headers in hops:
        signer.verify(body, headers[SIGNATURE_HEADER])  # each over exactly its own bytes
        assert jwt.get_unverified_header(headers[SIGNATURE_HEADER])["alg"] == signer.algorithm
    events = [h for q, _, h in transport.published if q == dispatcher.reply_queue]
    assert events and all(SIGNATURE_HEADER in h for h in events)  # events are signed too


# -- secure default ------------------------------------------------------------------------


async def test_in_memory_needs_no_configuration(start_worker: Any) -> None:
    transport = RecordingTransport()
    async with transport:
        start_worker(Worker(transport, ACTIVITIES))
        dispatcher = WorkflowDispatcher(transport)
        cid = await dispatcher.dispatch_workflow(PLAN)
        assert (await dispatcher.wait_for(cid, timeout=10)).status == "completed"
        await dispatcher.close()
    first = transport.published[0][2][SIGNATURE_HEADER]
    assert jwt.get_unverified_header(first)["kid"] == "ephemeral"


def test_cross_process_worker_and_dispatcher_refuse_to_start_without_a_key() -> None:
    transport = CrossProcessTransport()
    with pytest.raises(ConfigurationError, match="PAIGEANT_SIGNING_KEY") as info:
        Worker(transport, ACTIVITIES)
    assert "PAIGEANT_SIGNER=none" in str(info.value)
    with pytest.raises(ConfigurationError, match="crosses processes"):
        WorkflowDispatcher(transport)


async def test_cross_process_runs_signed_with_a_configured_key(
    monkeypatch: pytest.MonkeyPatch, start_worker: Any
) -> None:
    monkeypatch.setenv("PAIGEANT_SIGNING_KEY", "0123456789abcdef" * 4)
    monkeypatch.setenv("PAIGEANT_SIGNING_KEY_ID", "prod-1")
    transport = CrossProcessTransport(visibility_timeout=1.0)
    async with transport:
        worker = Worker(transport, ACTIVITIES)
        assert isinstance(worker.signer, HmacSigner)
        start_worker(worker)
        dispatcher = WorkflowDispatcher(transport)
        cid = await dispatcher.dispatch_workflow(PLAN)
        assert (await dispatcher.wait_for(cid, timeout=10)).status == "completed"
        await dispatcher.close()


def test_a_private_key_alone_selects_the_ed25519_signer(monkeypatch: pytest.MonkeyPatch) -> None:
    pem = _ed25519_key().private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    monkeypatch.setenv("PAIGEANT_SIGNING_PRIVATE_KEY", pem.decode())
    worker = Worker(CrossProcessTransport(), ACTIVITIES)
    assert isinstance(worker.signer, Ed25519Signer)
    monkeypatch.setenv("PAIGEANT_SIGNER", "hmac")  # an explicit choice wins
    with pytest.raises(ConfigurationError, match="PAIGEANT_SIGNING_KEY"):
        Worker(CrossProcessTransport(), ACTIVITIES)


def test_a_verify_only_signer_cannot_run_a_worker() -> None:
    verifier = Ed25519Signer(verify_keys={"k": _ed25519_key().public_key()})
    with pytest.raises(ConfigurationError, match="no private key"):
        Worker(InMemoryTransport(), ACTIVITIES, signer=verifier)
    with pytest.raises(ConfigurationError, match="no private key"):
        WorkflowDispatcher(InMemoryTransport(), signer=verifier)


async def test_signer_none_runs_unsigned_and_warns(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, start_worker: Any
) -> None:
    monkeypatch.setenv("PAIGEANT_SIGNER", "none")
    transport = RecordingTransport()
    with caplog.at_level(logging.WARNING, logger="paigeant.runtime.signer_choice"):
        worker = Worker(transport, ACTIVITIES)
    assert worker.signer is None
    assert any("NOT signed" in record.getMessage() for record in caplog.records)
    async with transport:
        start_worker(worker)
        dispatcher = WorkflowDispatcher(transport)
        cid = await dispatcher.dispatch_workflow(PLAN)
        assert (await dispatcher.wait_for(cid, timeout=10)).status == "completed"
        await dispatcher.close()
    assert all(SIGNATURE_HEADER not in headers for _, _, headers in transport.published)


def test_signer_none_is_allowed_across_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAIGEANT_SIGNER", "none")
    assert Worker(CrossProcessTransport(), ACTIVITIES).signer is None
    assert WorkflowDispatcher(CrossProcessTransport()).wire.signer is None


async def test_workers_with_different_keys_do_not_trust_each_other(start_worker: Any) -> None:
    transport = InMemoryTransport(visibility_timeout=1.0)
    async with transport:
        start_worker(Worker(transport, ACTIVITIES, signer=HmacSigner(b"w" * 32, key_id="k1")))
        dispatcher = WorkflowDispatcher(transport, signer=HmacSigner(b"d" * 32, key_id="k1"))
        await dispatcher.dispatch_workflow(PLAN)
        async with Receiver(transport, dead_letter_queue(activity_queue("sec-charge"))) as dlq:
            parked = await dlq.get(timeout=5)
            assert parked is not None
            assert parked.headers[DEAD_LETTER_REASON_HEADER] == (
                "invalid signature: signature does not match the message"
            )
        assert calls == []
        await dispatcher.close()
