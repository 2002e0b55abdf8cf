"""Choosing the identity provider that validates on-behalf-of tokens in a worker."""

from __future__ import annotations

from ..plugins import get_identity_provider
from ..security.identity import IdentityProvider
from ..settings import env_str

__all__ = ["OBO_KEY_VARIABLES", "resolve_identity_provider"]

#: Variables that configure the built-in ``jwt`` identity provider's keys.
OBO_KEY_VARIABLES = ("PAIGEANT_OBO_JWKS", "PAIGEANT_OBO_PUBLIC_KEY", "PAIGEANT_OBO_SECRET")


def resolve_identity_provider(
    provider: IdentityProvider | str | None = None,
) -> IdentityProvider | None:
    """Return the provider from the argument, ``PAIGEANT_IDENTITY_PROVIDER`` or OBO key settings.

    None means no provider is configured: a workflow that carries a token then faults.
    """
    if isinstance(provider, IdentityProvider):
        return provider
    name = provider or env_str("PAIGEANT_IDENTITY_PROVIDER")
    if name:
        return get_identity_provider(name)
    if any(env_str(var) for var in OBO_KEY_VARIABLES):
        return get_identity_provider("jwt")
    return None
