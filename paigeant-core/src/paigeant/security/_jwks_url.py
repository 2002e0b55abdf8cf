"""A JWKS fetched from an http(s) URL: off the event loop, cached, refetched at most so often.

One fetch runs at a time, in a thread of its own, and everyone who needs keys meanwhile waits
for that same fetch: a slow or hanging issuer holds up only the steps that need a key, never
the event loop or the default thread pool. Keys are kept for ``cache_ttl`` seconds (and kept
past it while the URL fails); a token naming an unknown ``kid`` triggers a refetch, at most one
per ``refetch_interval`` seconds, so tokens with made-up key ids cannot flood the issuer.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

import jwt
from jwt import PyJWK
from jwt.exceptions import PyJWKClientError

from ..errors import ConfigurationError, IdentityProviderUnavailableError, InvalidTokenError
from ._keys import load_jwk_set

__all__ = ["DEFAULT_CACHE_TTL", "DEFAULT_FETCH_TIMEOUT", "DEFAULT_REFETCH_INTERVAL", "UrlJwks"]

logger = logging.getLogger(__name__)

#: Seconds fetched keys are used before they are fetched again.
DEFAULT_CACHE_TTL = 300.0
#: Least seconds between two fetches caused by unknown key ids.
DEFAULT_REFETCH_INTERVAL = 60.0
#: Seconds one HTTP fetch may take.
DEFAULT_FETCH_TIMEOUT = 10.0
#: Least seconds between fetches while the URL fails and no keys are cached.
_FAILURE_BACKOFF = 5.0


class UrlJwks:
    """Signing keys from a JWKS URL by ``kid``, for sync (blocking) and async callers."""

    def __init__(
        self,
        url: str,
        *,
        what: str,
        cache_ttl: float = DEFAULT_CACHE_TTL,
        refetch_interval: float = DEFAULT_REFETCH_INTERVAL,
        timeout: float = DEFAULT_FETCH_TIMEOUT,
    ) -> None:
        """Fetch lazily from ``url`` (``what`` names the setting in errors and logs)."""
        if cache_ttl <= 0 or refetch_interval < 0 or timeout <= 0:
            raise ConfigurationError(
                f"{what}: the JWKS cache TTL and fetch timeout must be positive and the "
                "refetch interval not negative"
            )
        try:  # only its HTTP fetch is used; caching is done here
            self._client = jwt.PyJWKClient(
                url, cache_jwk_set=False, cache_keys=False, timeout=timeout
            )
        except PyJWKClientError as exc:
            raise ConfigurationError(f"{what}: {exc}") from None
        self.url = url
        self.what = what
        self.cache_ttl = float(cache_ttl)
        self.refetch_interval = float(refetch_interval)
        self._lock = threading.Lock()
        self._keys: list[PyJWK] | None = None
        self._fetched_at = -math.inf  # monotonic time of the last successful fetch
        self._attempted_at = -math.inf  # ... of the last fetch started
        self._failure: str | None = None  # why the last fetch failed, if it did
        self._pending: Future[None] | None = None
        self._executor: ThreadPoolExecutor | None = None

    # -- lookups -----------------------------------------------------------------------------

    def key(self, kid: str | None) -> PyJWK:
        """The key for ``kid``, fetching first if needed (blocks the calling thread)."""
        found = self._cached(kid)
        if found is None:
            self._refresh().result()
            found = self._after_fetch(kid)
        return found

    async def key_async(self, kid: str | None) -> PyJWK:
        """The key for ``kid``; a fetch it needs runs in the fetch thread, not the loop."""
        found = self._cached(kid)
        if found is None:
            await asyncio.shield(asyncio.wrap_future(self._refresh()))
            found = self._after_fetch(kid)
        return found

    def _cached(self, kid: str | None) -> PyJWK | None:
        """The key from the cache, or None when a fetch must run first; may raise."""
        now = time.monotonic()
        with self._lock:
            keys, pending = self._keys, self._pending is not None
            since_attempt = now - self._attempted_at
            if keys is None:
                if pending or since_attempt >= min(_FAILURE_BACKOFF, self.refetch_interval):
                    return None
                raise self._unavailable()
            found = _find(keys, kid)
            if found is not None:
                return found if now - self._fetched_at < self.cache_ttl else None
            if pending or since_attempt >= self.refetch_interval:
                return None  # an unknown kid: the issuer may have rotated its key
        wait = self.refetch_interval - since_attempt
        raise IdentityProviderUnavailableError(
            f"token key id is not in the JWKS of {self.what}, fetched {since_attempt:.0f}s ago; "
            f"it is fetched again (at most every {self.refetch_interval:g}s) in {wait:.0f}s, "
            "and the step is retried"
        )

    def _after_fetch(self, kid: str | None) -> PyJWK:
        with self._lock:
            keys, failure = self._keys, self._failure
        if keys is None:
            raise self._unavailable()
        found = _find(keys, kid)
        if found is not None:
            return found  # fresh, or stale because the fetch failed: better than nothing
        if failure is not None:
            raise self._unavailable()
        raise InvalidTokenError("token key id is not in the JWKS")

    def _unavailable(self) -> IdentityProviderUnavailableError:
        return IdentityProviderUnavailableError(
            f"cannot fetch the JWKS from {self.what} ({self._failure}); the step is retried"
        )

    # -- fetching ----------------------------------------------------------------------------

    def _refresh(self) -> Future[None]:
        """The fetch in progress, or a new one started in the fetch thread."""
        with self._lock:
            if self._pending is None:
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(1, thread_name_prefix="paigeant-jwks")
                self._attempted_at = time.monotonic()
                self._pending = self._executor.submit(self._fetch)
            return self._pending

    def _fetch(self) -> None:
        """Fetch and parse the JWKS (in the fetch thread); a failure keeps the cached keys."""
        try:
            keys = self._download()
        except Exception as exc:  # any failure of the issuer's endpoint: not the token's fault
            reason = str(exc) if isinstance(exc, ConfigurationError) else type(exc).__name__
            with self._lock:
                self._failure = reason
                self._pending = None
                kept = len(self._keys or ())
            logger.warning(
                "%s: cannot fetch the JWKS (%s); keeping %d cached key(s)", self.what, reason, kept
            )
            return
        with self._lock:
            self._keys = keys
            self._fetched_at = time.monotonic()
            self._failure = None
            self._pending = None
        logger.info("%s: fetched the JWKS (%d signing key(s))", self.what, len(keys))

    def _download(self) -> list[PyJWK]:
        data = self._client.fetch_data()  # PyJWKClient*Error, or ValueError for bad JSON
        if not isinstance(data, dict):
            raise ConfigurationError(f"{self.what}: the URL did not return a JWKS object")
        keys = [
            k for k in load_jwk_set(data, what=self.what).keys if k.public_key_use in (None, "sig")
        ]
        if not keys:
            raise ConfigurationError(f"{self.what}: the JWKS holds no signing key")
        return keys


def _find(keys: list[PyJWK], kid: str | None) -> PyJWK | None:
    if kid is None:
        if len(keys) == 1:
            return keys[0]
        raise InvalidTokenError("token has no key id and the JWKS holds several keys")
    return next((key for key in keys if key.key_id == kid), None)
