"""Choosing the signer with a secure default: signed always, unsigned only when asked for."""

from __future__ import annotations

import logging
import secrets

from ..errors import ConfigurationError
from ..plugins import get_signer
from ..security.hmac_signer import HmacSigner
from ..security.signer import Signer
from ..settings import env_str
from ..transports.base import Transport

__all__ = ["UNSIGNED", "resolve_signer"]

logger = logging.getLogger(__name__)

#: The ``PAIGEANT_SIGNER`` value that turns signing off explicitly.
UNSIGNED = "none"

_ephemeral: Signer | None = None


def _ephemeral_signer() -> Signer:
    """A per-process random HMAC key, shared by every in-process dispatcher and worker."""
    global _ephemeral
    if _ephemeral is None:
        _ephemeral = HmacSigner(secrets.token_bytes(32), key_id="ephemeral")
    return _ephemeral


def resolve_signer(transport: Transport, signer: Signer | str | None = None) -> Signer | None:
    """Return the signer to use with ``transport``; None only when signing is explicitly off.

    Precedence: the ``signer`` argument (an instance or a registered name), then
    ``PAIGEANT_SIGNER``, then ``hmac`` when ``PAIGEANT_SIGNING_KEY`` is set, then ``ed25519``
    when ``PAIGEANT_SIGNING_PRIVATE_KEY`` is. With no key, an in-process transport gets an
    ephemeral key and a cross-process one refuses to start (ConfigurationError). Workers and
    dispatchers sign every hop, so a verify-only signer is refused too.
    """
    chosen = _choose(transport, signer)
    if chosen is not None and not getattr(chosen, "can_sign", True):
        raise ConfigurationError(
            f"the {chosen.name or type(chosen).__name__} signer has no private key, but workers "
            "and dispatchers sign every hop: set PAIGEANT_SIGNING_PRIVATE_KEY"
        )
    return chosen


def _choose(transport: Transport, signer: Signer | str | None) -> Signer | None:
    if isinstance(signer, Signer):
        return signer
    name = signer or env_str("PAIGEANT_SIGNER")
    if name == UNSIGNED:
        logger.warning(
            "PAIGEANT_SIGNER=none: messages are NOT signed; any producer with broker access "
            "can forge or alter workflow steps"
        )
        return None
    if name:
        return get_signer(name)
    if env_str("PAIGEANT_SIGNING_KEY"):
        return get_signer("hmac")
    if env_str("PAIGEANT_SIGNING_PRIVATE_KEY"):
        return get_signer("ed25519")
    if not transport.crosses_processes:
        return _ephemeral_signer()
    raise ConfigurationError(
        f"no signing key configured for the {type(transport).__name__}, which crosses processes: "
        "set PAIGEANT_SIGNING_KEY (the same secret on every worker and dispatcher) or "
        "PAIGEANT_SIGNING_PRIVATE_KEY (ed25519), or choose a signer with PAIGEANT_SIGNER; "
        "PAIGEANT_SIGNER=none runs unsigned (not recommended)"
    )
