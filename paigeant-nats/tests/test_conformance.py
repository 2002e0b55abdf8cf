"""NatsTransport passes paigeant's transport conformance suite against real nats-servers.

The suite runs on the shared server (port 4222, default ``max_payload`` of 1 MiB, headers
included, so the big-body test sends a little less); its restart tests run against a private
``nats-server -js`` (``max_payload: 8MB``) that ``restart_broker`` stops and starts again,
once gracefully and once with SIGKILL. The shared server is never restarted.
"""

from __future__ import annotations

import asyncio
from typing import Any

import nats
import pytest

from paigeant import Transport
from paigeant.testing import TransportConformance
from paigeant_nats import NatsTransport


class TestNatsConformance(TransportConformance):
    """Every rule of the Transport contract, on the shared NATS server."""

    visibility_timeout = 1.0
    redelivery_grace = 3.0
    publish_failure_bound = 10.0  # publish_timeout (5 s by default) plus slack
    max_body_bytes = 1_000_000  # the server's max_payload (1 MiB) less room for headers

    @pytest.fixture(autouse=True)
    def _nats_settings(self, nats_url: str, prefix: str) -> None:
        self.url = nats_url
        self.prefix = prefix

    def make_transport(self) -> NatsTransport:
        return NatsTransport(url=self.url, prefix=self.prefix)

    async def publish_foreign(self, transport: Transport, queue: str, body: bytes) -> None:
        """A plain JetStream publish to the queue's subject: no Nats-Msg-Id, no headers."""
        assert isinstance(transport, NatsTransport)
        client = await nats.connect(self.url)
        try:
            await client.jetstream().publish(transport.names.subject(queue), body)
        finally:
            await client.close()


class TestNatsRestarts(TransportConformance):
    """The suite's restart tests (and the 1 MiB body) on a private server it restarts."""

    visibility_timeout = 1.0
    redelivery_grace = 3.0
    publish_failure_bound = 10.0
    kill = False

    @pytest.fixture(autouse=True)
    def _nats_settings(self, private_nats: Any, prefix: str) -> None:
        self.server = private_nats
        self.prefix = prefix

    def make_transport(self) -> NatsTransport:
        return NatsTransport(url=self.server.url, prefix=self.prefix)

    async def restart_broker(self) -> None:
        """Stop the private server (SIGTERM, or SIGKILL), keep it down 0.5 s, start it."""
        await asyncio.to_thread(self.server.restart, down_for=0.5, kill=self.kill)


class TestNatsKillRestarts(TestNatsRestarts):
    """The same restart tests, the server killed with SIGKILL each time."""

    kill = True


#: The suite's restart tests: they run on the private server only (never restart the shared one).
_RESTART_TESTS = {
    "test_messages_survive_a_broker_restart",
    "test_publish_during_a_broker_restart_succeeds_or_raises",
}
for _name in dir(TransportConformance):
    if not _name.startswith("test_"):
        continue
    if _name in _RESTART_TESTS:
        setattr(TestNatsConformance, _name, None)  # run by TestNatsRestarts instead
    elif _name != "test_one_mebibyte_body":  # a body of max_body_bytes: 1 MiB here
        setattr(TestNatsRestarts, _name, None)  # already run on the shared server
