"""Errors of the RabbitMQ transport beyond paigeant's own."""

from __future__ import annotations

from paigeant import PaigeantError

__all__ = ["NegativeConfirmError", "PublishRefusedError", "UnroutableError"]


class PublishRefusedError(PaigeantError):
    """The broker refused a publish (a negative publisher confirm): nothing was queued."""


class UnroutableError(PaigeantError):
    """The broker returned a publish: no queue (or binding) took it, so nothing was queued."""


class NegativeConfirmError(PublishRefusedError):
    """The refusal was a negative publisher confirm (``basic.nack``): the queue took nothing."""
