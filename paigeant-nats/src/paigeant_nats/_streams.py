"""Streams and consumers: created with explicit configs, kept in line, swept, counted."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from nats.js import JetStreamManager
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    ConsumerInfo,
    DeliverPolicy,
    DiscardPolicy,
    ReplayPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import APIError, NotFoundError

from paigeant import ConfigurationError, QueueStats, dead_letter_queue

from ._names import PROMOTER, WORKER, Names

__all__ = ["PROMOTER_ACK_WAIT", "StreamSettings", "Streams"]

logger = logging.getLogger(__name__)

#: Seconds the promoter holds a delayed message before JetStream gives it to another promoter.
PROMOTER_ACK_WAIT = 5.0
#: Pull requests one consumer lets wait at a time, across every process.
MAX_WAITING = 512

_CONFIG_DIFFERS = 10058  # "stream name already in use with a different configuration"
_SUBJECTS_OVERLAP = 10065
_NO_MESSAGE = 10037
#: "insufficient storage resources available" / "insufficient resources": the server cannot
#: reserve a new stream's ``max_bytes``.
_NO_STORAGE = (10047, 10023)


@dataclass(frozen=True, slots=True)
class StreamSettings:
    """The limits and durability every stream of a transport is created with."""

    max_messages: int
    max_bytes: int  # -1: no limit (nothing reserved)
    duplicate_window: float
    replicas: int


class Streams:
    """Creates and inspects the streams and consumers of one transport."""

    def __init__(
        self, names: Names, settings: StreamSettings, manager: Callable[[], JetStreamManager]
    ) -> None:
        """Use ``manager()`` (the current connection's JetStream API) for every call."""
        self.names = names
        self.settings = settings
        self._manager = manager

    # -- configs -----------------------------------------------------------------------------

    def _config(self, name: str, subject: str, description: str) -> StreamConfig:
        settings = self.settings
        return StreamConfig(
            name=name,
            description=description,
            subjects=[subject],
            retention=RetentionPolicy.WORK_QUEUE,
            storage=StorageType.FILE,
            discard=DiscardPolicy.NEW,  # a full queue refuses publishes; it never drops work
            max_msgs=settings.max_messages,
            max_bytes=settings.max_bytes,
            max_age=0,  # work never expires
            max_msgs_per_subject=-1,
            max_msg_size=-1,  # the server's max_payload applies
            max_consumers=-1,
            duplicate_window=settings.duplicate_window,
            num_replicas=settings.replicas,
            deny_delete=False,  # the sweep deletes resurrected messages by sequence
            deny_purge=False,
            allow_rollup_hdrs=False,
        )

    def queue_config(self, queue: str) -> StreamConfig:
        """The stream config of ``queue``: work-queue, file storage, ``discard=new``."""
        return self._config(self.names.stream(queue), self.names.subject(queue), queue)

    def delay_config(self) -> StreamConfig:
        """The stream config of the delay stream (every delayed message under the prefix)."""
        names = self.names
        return self._config(
            names.delay_stream, names.delay_wildcard, f"paigeant delayed messages ({names.prefix})"
        )

    @staticmethod
    def consumer_config(durable: str, ack_wait: float) -> ConsumerConfig:
        """A durable pull consumer: explicit acks, no redelivery limit, no pending limit."""
        return ConsumerConfig(
            durable_name=durable,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=ack_wait,
            max_deliver=-1,  # the transport dead-letters past max_deliveries itself
            deliver_policy=DeliverPolicy.ALL,
            replay_policy=ReplayPolicy.INSTANT,
            max_ack_pending=-1,  # prefetch is enforced per consume loop
            max_waiting=MAX_WAITING,
        )

    # -- ensuring ----------------------------------------------------------------------------

    async def ensure_stream(self, config: StreamConfig) -> None:
        """Create the stream, or bring an existing one in line with ``config``."""
        manager = self._manager()
        try:
            await manager.add_stream(config)
            return
        except APIError as exc:
            if exc.err_code != _CONFIG_DIFFERS:
                raise _explained(config, exc) from None
        logger.info("stream %s exists with another configuration; updating it", config.name)
        try:
            await manager.update_stream(config)
        except APIError as exc:
            raise _explained(config, exc) from None

    async def ensure_queue(self, queue: str) -> None:
        """Create ``queue``'s stream (or update its config)."""
        await self.ensure_stream(self.queue_config(queue))

    async def ensure_consumer(self, stream: str, durable: str, ack_wait: float) -> None:
        """Create the durable pull consumer, or update it when its settings differ."""
        manager = self._manager()
        wanted = self.consumer_config(durable, ack_wait)
        try:
            info = await manager.consumer_info(stream, durable)
        except NotFoundError:
            info = None
        if info is not None and _matches(info, wanted):
            return
        if info is not None:
            logger.warning(
                "consumer %s of stream %s had ack_wait=%ss, max_deliver=%s; setting "
                "ack_wait=%ss (every process of a queue should use one visibility_timeout)",
                durable,
                stream,
                info.config.ack_wait,
                info.config.max_deliver,
                ack_wait,
            )
        await manager.add_consumer(stream, wanted)

    async def ensure_worker(self, queue: str, ack_wait: float) -> None:
        """``queue``'s stream and its shared consumer."""
        await self.ensure_queue(queue)
        await self.ensure_consumer(self.names.stream(queue), WORKER, ack_wait)

    async def ensure_promoter(self) -> None:
        """The delay stream and its promoter consumer."""
        await self.ensure_stream(self.delay_config())
        await self.ensure_consumer(self.names.delay_stream, PROMOTER, PROMOTER_ACK_WAIT)

    # -- deleting and sweeping ---------------------------------------------------------------

    async def delete_queue(self, queue: str) -> None:
        """Delete ``queue``'s stream and purge its delayed messages (its DLQ stays)."""
        manager = self._manager()
        with contextlib.suppress(NotFoundError):
            await manager.delete_stream(self.names.stream(queue))
        with contextlib.suppress(NotFoundError):
            await manager.purge_stream(
                self.names.delay_stream, subject=self.names.delay_subject(queue)
            )

    async def sweep(self, stream: str, subject: str, durable: str) -> int:
        """Delete messages below the consumer's ack floor: acked messages a crash brought back.

        nats-server before 2.10 can resurrect acknowledged messages after a kill -9 (their
        removal had not reached its index): they are never delivered again (they lie below the
        ack floor) but they count against the stream's limits. With ``max_deliver=-1`` nothing
        else can lie there, so deleting them is safe. Returns how many were removed.
        """
        manager = self._manager()
        try:
            info = await manager.stream_info(stream)
            consumer = await manager.consumer_info(stream, durable)
        except NotFoundError:
            return 0
        extra = info.state.messages - (consumer.num_pending or 0) - (consumer.num_ack_pending or 0)
        floor = consumer.ack_floor.stream_seq if consumer.ack_floor else 0
        if extra <= 0 or not floor:
            return 0
        removed = 0
        seq = info.state.first_seq
        while seq <= floor:
            try:
                found = await manager.get_msg(stream, seq, subject=subject, next=True)
            except NotFoundError:
                break
            if found.seq is None or found.seq > floor:
                break
            try:
                await manager.delete_msg(stream, found.seq)
                removed += 1
            except APIError as exc:
                if exc.err_code != _NO_MESSAGE and not isinstance(exc, NotFoundError):
                    raise
            seq = found.seq + 1
        if removed:
            logger.warning(
                "removed %d message(s) from stream %s that were acknowledged before a broker "
                "crash (nats-server < 2.10 brings them back after a kill -9)",
                removed,
                stream,
            )
        return removed

    # -- counting ----------------------------------------------------------------------------

    async def stats(self, queue: str) -> QueueStats:
        """Ready, in flight, delayed and dead messages of ``queue`` from stream/consumer info."""
        ready, in_flight = await self._counts(queue)
        dead_ready, dead_flight = await self._counts(dead_letter_queue(queue))
        manager, names = self._manager(), self.names
        subject = names.delay_subject(queue)
        try:
            delayed_info = await manager.stream_info(names.delay_stream, subjects_filter=subject)
            delayed = (delayed_info.state.subjects or {}).get(subject, 0)
        except NotFoundError:
            delayed = 0
        return QueueStats(ready, in_flight, delayed, dead_ready + dead_flight)

    async def _counts(self, queue: str) -> tuple[int, int]:
        """(waiting for a consumer, delivered and unsettled) of ``queue``'s stream."""
        manager, stream = self._manager(), self.names.stream(queue)
        try:
            consumer = await manager.consumer_info(stream, WORKER)
        except NotFoundError:
            try:
                info = await manager.stream_info(stream)
            except NotFoundError:
                return 0, 0
            return info.state.messages, 0
        return consumer.num_pending or 0, consumer.num_ack_pending or 0


def _explained(config: StreamConfig, exc: APIError) -> Exception:
    """A ConfigurationError saying what to change for the refusals a user can fix, else ``exc``."""
    if exc.err_code == _SUBJECTS_OVERLAP:
        return ConfigurationError(
            f"cannot create stream {config.name}: another stream in this NATS account already "
            f"captures {config.subjects} ({exc.description}); delete it or use another prefix "
            "(PAIGEANT_NATS_PREFIX)"
        )
    if exc.err_code in _NO_STORAGE:
        reserved = (
            f"the {config.max_bytes} bytes of max_bytes it would reserve"
            if config.max_bytes and config.max_bytes > 0
            else "storage"
        )
        return ConfigurationError(
            f"cannot create stream {config.name}: NATS has no {reserved} left "
            f"({exc.description}, err_code {exc.err_code}). Every stream reserves its max_bytes "
            "(max_queue_bytes) of the server's max_file_store: lower max_queue_bytes or leave "
            "it unset, delete unused streams, or give JetStream more storage"
        )
    return exc


def _matches(info: ConsumerInfo, wanted: ConsumerConfig) -> bool:
    config = info.config
    return (
        config.ack_wait is not None
        and abs(config.ack_wait - (wanted.ack_wait or 0)) < 1e-6
        and config.max_deliver == wanted.max_deliver
        and config.max_ack_pending == wanted.max_ack_pending
        and not config.backoff
    )
