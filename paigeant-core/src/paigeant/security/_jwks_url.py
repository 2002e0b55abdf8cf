"""A JWKS fetched from an http(s) URL: off the event loop, cached, refreshed in the background.

One fetch runs at a time, in a daemon thread of its own (never joined at interpreter exit, so a
hanging issuer cannot delay the process's exit), and everyone who waits for keys meanwhile waits
for that same fetch: a slow or hanging issuer holds up only the steps that wait for a key, never
the event loop or the default thread pool.

Keys are fresh for ``cache_ttl`` seconds. After that they are *stale*: for up to ``max_stale``
more seconds a lookup still returns the cached key at once and starts one background refresh
(stale-while-revalidate), so a slow issuer delays nobody. While the issuer fails, the stale keys
go on being served and the refresh is retried at most every few seconds. Keys older than
``cache_ttl + max_stale`` are not used without a successful fetch: lookups wait for one, and
get ``IdentityProviderUnavailableError`` if it fails. A token naming an unknown ``kid`` waits for
a refetch (the issuer may have rotated its key), at most one per ``refetch_interval`` seconds, so
tokens with made-up key ids cannot flood the issuer.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeoutError

import jwt
from jwt import PyJWK
from jwt.exceptions import PyJWKClientError

from ..errors import ConfigurationError, IdentityProviderUnavailableError, InvalidTokenError
from ._keys import load_jwk_set

__all__ = [
    "DEFAULT_CACHE_TTL",
    "DEFAULT_FETCH_TIMEOUT",
    "DEFAULT_MAX_STALE",
    "DEFAULT_REFETCH_INTERVAL",
    "UrlJwks",
]

logger = logging.getLogger(__name__)

#: Seconds fetched keys are fresh; after that a lookup refreshes them in the background.
DEFAULT_CACHE_TTL = 300.0
#: Seconds past ``cache_ttl`` that stale keys are still served while they are refreshed.
DEFAULT_MAX_STALE = 3600.0
#: Least seconds between two fetches caused by unknown key ids.
DEFAULT_REFETCH_INTERVAL = 60.0
#: Seconds one HTTP fetch may take.
DEFAULT_FETCH_TIMEOUT = 10.0
#: Least seconds between fetches while the URL fails (with no usable keys, or in the background).
_FAILURE_BACKOFF = 5.0


class UrlJwks:
    """Signing keys from a JWKS URL by ``kid``, for sync (blocking) and async callers."""

    def __init__(
        self,
        url: str,
        *,
        what: str,
        cache_ttl: float = DEFAULT_CACHE_TTL,
        max_stale: float = DEFAULT_MAX_STALE,
        refetch_interval: float = DEFAULT_REFETCH_INTERVAL,
        timeout: float = DEFAULT_FETCH_TIMEOUT,
    ) -> None:
        """Fetch lazily from ``url`` (``what`` names the setting in errors and logs)."""
        if cache_ttl <= 0 or timeout <= 0 or max_stale < 0 or refetch_interval < 0:
            raise ConfigurationError(
                f"{what}: the JWKS cache TTL and fetch timeout must be positive, the maximum "
                "staleness and the refetch interval not negative"
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
        self.max_stale = float(max_stale)
        self.refetch_interval = float(refetch_interval)
        #: Longest a fetch may take in all: urllib's timeout bounds each socket read only, so
        #: an issuer trickling bytes would hold a fetch (and everyone waiting for it) forever.
        self.fetch_deadline = 2 * float(timeout) + 1.0
        self._lock = threading.Lock()
        self._keys: list[PyJWK] | None = None
        self._fetched_at = -math.inf  # monotonic time of the last successful fetch
        self._attempted_at = -math.inf  # ... of the last fetch started
        self._failure: str | None = None  # why the last fetch failed, if it did
        self._pending: Future[None] | None = None

    @property
    def max_age(self) -> float:
        """Seconds after a fetch that its keys may be served: ``cache_ttl + max_stale``."""
        return self.cache_ttl + self.max_stale

    # -- lookups -----------------------------------------------------------------------------

    def key(self, kid: str | None) -> PyJWK:
        """The key for ``kid``, fetching first if it must (blocks the calling thread)."""
        found = self._cached(kid)
        if found is None:
            fetch = self._refresh()
            try:
                fetch.result(timeout=self._wait_left())
            except FutureTimeoutError:
                self._abandon(fetch)
            found = self._after_fetch(kid)
        return found

    async def key_async(self, kid: str | None) -> PyJWK:
        """The key for ``kid``; a fetch it waits for runs in the fetch thread, not the loop."""
        found = self._cached(kid)
        if found is None:
            fetch = self._refresh()
            try:
                async with asyncio.timeout(self._wait_left()):
                    await asyncio.shield(asyncio.wrap_future(fetch))
            except TimeoutError:
                self._abandon(fetch)
            found = self._after_fetch(kid)
        return found

    def _cached(self, kid: str | None) -> PyJWK | None:
        """The key from the cache, or None when a fetch must be waited for; may raise.

        A stale key is returned at once, and a background refresh started if none runs.
        """
        now = time.monotonic()
        with self._lock:
            pending, failure = self._pending is not None, self._failure
            since_attempt = now - self._attempted_at
            age = now - self._fetched_at
            retry_due = failure is None or since_attempt >= min(
                _FAILURE_BACKOFF, self.refetch_interval
            )
            if self._keys is None or age >= self.max_age:  # nothing usable: wait for a fetch
                if pending or retry_due:
                    return None
                raise self._unavailable(age)
            found = _find(self._keys, kid)
            if found is not None:
                if age >= self.cache_ttl and not pending and retry_due:
                    self._start_fetch()  # stale: serve it, refresh in the background
                return found
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
            age = time.monotonic() - self._fetched_at
        if keys is None or (failure is not None and age >= self.max_age):
            raise self._unavailable(age)
        found = _find(keys, kid)
        if found is not None:
            return found  # fresh, or stale (within max_age) because the fetch failed
        if failure is not None:
            raise self._unavailable(age)
        raise InvalidTokenError("token key id is not in the JWKS")

    def _unavailable(self, age: float) -> IdentityProviderUnavailableError:
        cached = ""
        if math.isfinite(age) and age >= self.max_age:
            cached = (
                f"; the cached keys are {age:.0f}s old, past the {self.max_age:g}s they may be "
                f"used (cache TTL {self.cache_ttl:g}s + maximum staleness {self.max_stale:g}s)"
            )
        return IdentityProviderUnavailableError(
            f"cannot fetch the JWKS from {self.what} ({self._failure}){cached}; the step is retried"
        )

    # -- fetching ----------------------------------------------------------------------------

    def _refresh(self) -> Future[None]:
        """The fetch in progress, or a new one started in a fetch thread."""
        with self._lock:
            if self._pending is not None and self._overdue():
                self._give_up_locked(self._pending)
            return self._pending or self._start_fetch()

    def _overdue(self) -> bool:
        return time.monotonic() - self._attempted_at >= self.fetch_deadline

    def _wait_left(self) -> float:
        """Seconds a caller may still wait for the fetch in progress (at least a moment)."""
        return max(0.01, self._attempted_at + self.fetch_deadline - time.monotonic())

    def _abandon(self, fetch: Future[None]) -> None:
        """``fetch`` ran past ``fetch_deadline``: count it failed; the next lookup starts anew."""
        with self._lock:
            if self._pending is fetch:
                self._give_up_locked(fetch)

    def _give_up_locked(self, fetch: Future[None]) -> None:
        self._failure = f"no complete answer within {self.fetch_deadline:g}s"
        self._pending = None
        if not fetch.done():
            fetch.set_result(None)
        logger.warning("%s: the JWKS fetch %s; giving up on it", self.what, self._failure)

    def _start_fetch(self) -> Future[None]:
        """Start a fetch in a new daemon thread (the lock is held, no fetch is pending)."""
        future: Future[None] = Future()
        future.set_running_or_notify_cancel()  # a waiter cancelled never cancels the fetch
        self._attempted_at = time.monotonic()
        self._pending = future
        thread = threading.Thread(
            target=self._fetch, args=(future,), name="paigeant-jwks", daemon=True
        )
        try:
            thread.start()
        except RuntimeError as exc:  # cannot start a thread: a failed fetch, keys kept
            self._failure = f"cannot start the fetch thread: {exc}"
            self._pending = None
            future.set_result(None)
        return future

    def _fetch(self, future: Future[None]) -> None:
        """Fetch and parse the JWKS (in the fetch thread); a failure keeps the cached keys."""
        try:
            keys = self._download()
        except Exception as exc:  # any failure of the issuer's endpoint: not the token's fault
            reason = str(exc) if isinstance(exc, ConfigurationError) else type(exc).__name__
            with self._lock:
                if self._pending is future:  # not given up on meanwhile (a newer fetch may run)
                    self._failure = reason
                    self._pending = None
                kept = len(self._keys or ())
                if not future.done():
                    future.set_result(None)
            logger.warning(
                "%s: cannot fetch the JWKS (%s); keeping %d cached key(s)", self.what, reason, kept
            )
            return
        with self._lock:
            self._keys = keys  # fresh keys, even from a fetch given up on: better than old ones
            self._fetched_at = time.monotonic()
            if self._pending is future:
                self._failure = None
                self._pending = None
            if not future.done():
                future.set_result(None)
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
