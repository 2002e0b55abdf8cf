"""The IdentityProvider interface: validate on-behalf-of tokens into user claims."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

__all__ = ["IdentityProvider"]


class IdentityProvider(ABC):
    """Validates an on-behalf-of token and returns its claims."""

    #: Name the provider is registered under.
    name: str = ""

    @abstractmethod
    def validate(self, token: str) -> Mapping[str, Any]:
        """Return the token's claims; raise InvalidTokenError when it is not valid."""

    def validate_for_compensation(self, token: str) -> Mapping[str, Any]:
        """Return claims for a compensation step, which may run after the token has expired.

        Compensation undoes work the token authorised when it ran, so a provider may accept an
        expired but otherwise valid token here (the built-in ``jwt`` provider does). The default
        is ``validate``; when it raises InvalidTokenError the compensation gets empty claims.
        """
        return self.validate(token)

    async def validate_async(self, token: str) -> Mapping[str, Any]:
        """``validate`` without blocking the event loop; the worker calls this one.

        The default runs ``validate`` in a worker thread, so a provider that does I/O (fetches
        keys, calls an introspection endpoint) never stalls other steps. Override it with a
        native async implementation, or to skip the thread when validation is pure CPU.
        """
        return await asyncio.to_thread(self.validate, token)

    async def validate_for_compensation_async(self, token: str) -> Mapping[str, Any]:
        """``validate_for_compensation`` without blocking the event loop (default: a thread)."""
        return await asyncio.to_thread(self.validate_for_compensation, token)
