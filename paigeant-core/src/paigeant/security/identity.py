"""The IdentityProvider interface: validate on-behalf-of tokens into user claims."""

from __future__ import annotations

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
