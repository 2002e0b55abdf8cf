"""A JWKS file of token-verification keys, re-read when it changes (key rotation)."""

from __future__ import annotations

import logging
from pathlib import Path

from jwt import PyJWK

from ..errors import ConfigurationError, InvalidTokenError
from ._keys import load_jwk_set

__all__ = ["FileJwks"]

logger = logging.getLogger(__name__)


class FileJwks:
    """Signing keys from a JWKS file, looked up by ``kid``; re-read on an unknown ``kid``."""

    def __init__(self, path: str, *, what: str) -> None:
        """Load the JWKS file at ``path`` (``what`` names the setting in errors)."""
        self.path = Path(path).expanduser()
        self.what = what
        self._mtime: int | None = None
        self._keys: list[PyJWK] = []
        self._load()

    def _load(self) -> None:
        try:
            mtime = self.path.stat().st_mtime_ns
        except OSError as exc:
            raise ConfigurationError(
                f"{self.what}: cannot read the JWKS file it names ({exc.strerror})"
            ) from None
        jwk_set = load_jwk_set(str(self.path), what=self.what)
        self._keys = [k for k in jwk_set.keys if k.public_key_use in (None, "sig")]
        self._mtime = mtime

    def _reload_if_changed(self) -> None:
        try:
            changed = self.path.stat().st_mtime_ns != self._mtime
        except OSError:
            return
        if changed:
            try:
                self._load()
                logger.info("%s: reloaded the JWKS file", self.what)
            except ConfigurationError as exc:
                logger.warning("%s: keeping the previous keys: %s", self.what, exc)

    def _find(self, kid: str | None) -> PyJWK | None:
        if kid is None:
            return self._keys[0] if len(self._keys) == 1 else None
        return next((key for key in self._keys if key.key_id == kid), None)

    def key(self, kid: str | None) -> PyJWK:
        """Return the key for ``kid`` (None: the only key); InvalidTokenError if there is none."""
        found = self._find(kid)
        if found is None:
            self._reload_if_changed()
            found = self._find(kid)
        if found is not None:
            return found
        if kid is None:
            raise InvalidTokenError("token has no key id and the JWKS holds several keys")
        raise InvalidTokenError("token key id is not in the JWKS")
