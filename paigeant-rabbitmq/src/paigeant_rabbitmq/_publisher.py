"""Publishing with publisher confirms: back once the broker took the message, bounded in time.

One confirm channel per connection; concurrent publishes share it (aiormq pipelines them and
matches the confirms). A connection that breaks mid-publish is reopened and the publish sent
again until ``timeout`` has passed, then TransportConnectionError: the message may then have
arrived once (at-least-once), it is never reported published when it was not.
"""

from __future__ import annotations

import asyncio
import time

from aiormq.exceptions import (
    AMQPChannelError,
    ChannelNotFoundEntity,
    DeliveryError,
    PublishError,
)
from pamqp.commands import Basic

from paigeant import TransportConnectionError

from ._channels import KeptChannel
from ._errors import NegativeConfirmError, PublishRefusedError, UnroutableError
from ._link import CONNECTION_ERRORS, Link, LinkClosedError

__all__ = ["Publisher"]


class Publisher:
    """Confirmed, mandatory publishes on ``link``, each given up after ``timeout`` seconds."""

    def __init__(self, link: Link, *, timeout: float) -> None:
        """Publish on ``link``; ``timeout`` bounds each publish, reconnects included."""
        self._link = link
        self.timeout = timeout
        self._channel = KeptChannel(link, confirms=True)

    async def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: Basic.Properties,
        *,
        target: str,
    ) -> None:
        """Publish and wait for the broker's confirm; ``target`` names the queue in errors.

        Raises UnroutableError when nothing took the message (no queue or binding),
        NegativeConfirmError (a PublishRefusedError) on a negative confirm, and
        TransportConnectionError when the broker stays unreachable for ``timeout`` seconds.
        """
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                channel = await self._channel.get(deadline)
                left = deadline - time.monotonic()
                confirm = await channel.basic_publish(
                    body,
                    exchange=exchange,
                    routing_key=routing_key,
                    properties=properties,
                    mandatory=True,
                    timeout=max(left, 0.001),
                )
            except PublishError as exc:
                raise UnroutableError(
                    f"RabbitMQ returned message {properties.message_id!r} sent to {target!r}: "
                    f"{getattr(exc.frame, 'reply_text', exc)}"
                ) from exc
            except DeliveryError as exc:  # aiormq raises a negative confirm (Basic.Nack)
                raise NegativeConfirmError(_refused(properties.message_id, target)) from exc
            except ChannelNotFoundEntity as exc:  # the exchange is gone
                self._channel.broken()
                raise UnroutableError(f"exchange {exchange!r} does not exist: {exc}") from exc
            except TimeoutError as exc:  # the channel only: heartbeats judge the connection
                self._channel.broken()
                raise TransportConnectionError(
                    f"RabbitMQ at {self._link.host} did not confirm message "
                    f"{properties.message_id!r} within {self.timeout}s"
                ) from exc
            except asyncio.CancelledError:
                raise
            except LinkClosedError:
                raise
            except AMQPChannelError as exc:  # the broker's answer (ACCESS_REFUSED, ...): final
                self._channel.broken()
                raise PublishRefusedError(
                    f"RabbitMQ refused message {properties.message_id!r} for {target!r}: {exc}"
                ) from exc
            except CONNECTION_ERRORS as exc:  # TransportConnectionError from get() included
                await self._channel.retry_after(
                    exc, deadline, f"cannot publish to RabbitMQ at {self._link.host}: {exc!r}"
                )
                continue
            if isinstance(confirm, Basic.Nack):
                raise NegativeConfirmError(_refused(properties.message_id, target))
            return

    async def close(self) -> None:
        """Close the confirm channel."""
        await self._channel.close()


def _refused(message_id: str | None, target: str) -> str:
    return (
        f"RabbitMQ refused message {message_id!r} for {target!r} (negative confirm): a full "
        "queue with overflow=reject-publish, or a quorum queue without a majority"
    )
