"""The Signer interface: sign the canonical bytes of each hop and verify them on receipt."""

from __future__ import annotations

from abc import ABC, abstractmethod

__all__ = ["Signer"]


class Signer(ABC):
    """Signs message bytes into a detached compact JWS and verifies such signatures."""

    #: Name the signer is registered under.
    name: str = ""

    @abstractmethod
    def sign(self, data: bytes) -> str:
        """Return a detached compact JWS over ``data``."""

    @abstractmethod
    def verify(self, data: bytes, signature: str) -> None:
        """Return if ``signature`` is valid for ``data``; raise SignatureError otherwise."""
