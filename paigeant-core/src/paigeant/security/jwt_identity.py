"""The built-in ``jwt`` identity provider: validates on-behalf-of JWTs with pinned algorithms."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import jwt

from ..errors import ConfigurationError, InvalidTokenError
from ..settings import env_float, env_str
from ._jwks_file import FileJwks
from ._jwks_url import DEFAULT_CACHE_TTL, DEFAULT_MAX_STALE, DEFAULT_REFETCH_INTERVAL, UrlJwks
from ._keys import parse_public_key, read_pem
from .identity import IdentityProvider

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "DEFAULT_LEEWAY",
    "SECRET_ALGORITHMS",
    "JwtIdentityProvider",
]

logger = logging.getLogger(__name__)

#: Default algorithms for tokens verified with public keys (JWKS or PEM).
ASYMMETRIC_ALGORITHMS: tuple[str, ...] = ("RS256", "ES256", "EdDSA")
#: Default algorithms for tokens verified with a shared secret.
SECRET_ALGORITHMS: tuple[str, ...] = ("HS256",)
#: Seconds of clock skew tolerated on ``exp``, ``nbf`` and ``iat``.
DEFAULT_LEEWAY = 30.0

_HMAC = frozenset({"HS256", "HS384", "HS512"})
_EC_ALGORITHMS = {
    "secp256r1": frozenset({"ES256"}),
    "secp384r1": frozenset({"ES384"}),
    "secp521r1": frozenset({"ES512", "ES521"}),
    "secp256k1": frozenset({"ES256K"}),
}
_SUPPORTED = frozenset(jwt.algorithms.get_default_algorithms()) - {"none"}


def _algorithms_for(key: Any) -> frozenset[str]:
    """The JWS algorithms that can verify with public ``key``."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

    if isinstance(key, rsa.RSAPublicKey):
        return frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
    if isinstance(key, ec.EllipticCurvePublicKey):
        return _EC_ALGORITHMS.get(key.curve.name, frozenset())
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return frozenset({"EdDSA"})
    return frozenset()


def _split(value: str | Sequence[str] | None) -> list[str] | None:
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    return [item.strip() for item in items if item.strip()] or None


class JwtIdentityProvider(IdentityProvider):
    """Validates signature, ``exp``, ``nbf``, ``iss`` and ``aud`` of on-behalf-of JWTs.

    Keys come from exactly one of: a JWKS (file path or http(s) URL), a PEM public key, or a
    shared secret. Arguments win over ``PAIGEANT_OBO_*`` variables. Reasons for rejecting a
    token never contain the token.
    """

    name = "jwt"

    def __init__(
        self,
        *,
        jwks: str | None = None,
        public_key: str | bytes | None = None,
        secret: str | bytes | None = None,
        issuer: str | None = None,
        audience: str | Sequence[str] | None = None,
        leeway: float | None = None,
        algorithms: str | Sequence[str] | None = None,
        required_claims: Sequence[str] = ("exp",),
        jwks_cache_ttl: float | None = None,
        jwks_refetch_interval: float | None = None,
        jwks_max_stale: float | None = None,
    ) -> None:
        """Configure keys and checks; each ``None`` falls back to its ``PAIGEANT_OBO_*`` variable.

        Args:
            jwks: JWKS file path or http(s) URL (``PAIGEANT_OBO_JWKS``).
            public_key: PEM public key, text or file path (``PAIGEANT_OBO_PUBLIC_KEY``).
            secret: shared HMAC secret (``PAIGEANT_OBO_SECRET``).
            issuer: the accepted ``iss`` (``PAIGEANT_OBO_ISSUER``); unset: not checked.
            audience: accepted ``aud`` values, comma separated in ``PAIGEANT_OBO_AUDIENCE``;
                unset: a token that names an audience is rejected.
            leeway: clock skew in seconds (``PAIGEANT_OBO_LEEWAY``, default 30).
            algorithms: the pinned algorithms (``PAIGEANT_OBO_ALGORITHMS``); default RS256,
                ES256 and EdDSA for keys, HS256 for a secret.
            required_claims: claims a token must carry (default ``exp``).
            jwks_cache_ttl: seconds keys fetched from a JWKS URL are fresh; after that a
                lookup serves them and refreshes them in the background
                (``PAIGEANT_OBO_JWKS_CACHE_TTL``, default 300).
            jwks_refetch_interval: least seconds between two fetches of a JWKS URL caused by
                tokens naming an unknown ``kid`` (``PAIGEANT_OBO_JWKS_REFETCH_INTERVAL``,
                default 60).
            jwks_max_stale: seconds past ``jwks_cache_ttl`` that expired keys are still
                served while a refresh runs or the URL fails; older keys wait for a fetch
                (``PAIGEANT_OBO_JWKS_MAX_STALE``, default 3600).
        """
        given = {"jwks": jwks, "public_key": public_key, "secret": secret}
        if not any(value is not None for value in given.values()):
            given = {
                "jwks": env_str("PAIGEANT_OBO_JWKS"),
                "public_key": env_str("PAIGEANT_OBO_PUBLIC_KEY"),
                "secret": env_str("PAIGEANT_OBO_SECRET"),
            }
        chosen = [name for name, value in given.items() if value]
        if len(chosen) != 1:
            raise ConfigurationError(
                "the jwt identity provider needs exactly one key source: PAIGEANT_OBO_JWKS "
                "(JWKS file or URL), PAIGEANT_OBO_PUBLIC_KEY (PEM) or PAIGEANT_OBO_SECRET "
                f"(HS256 shared secret); got {', '.join(chosen) or 'none'}"
            )
        uses_secret = chosen[0] == "secret"
        self.algorithms = self._pinned(algorithms, uses_secret)
        self.issuer = issuer if issuer is not None else env_str("PAIGEANT_OBO_ISSUER")
        self.audience = _split(
            audience if audience is not None else env_str("PAIGEANT_OBO_AUDIENCE")
        )
        self.leeway = (
            float(leeway)
            if leeway is not None
            else env_float("PAIGEANT_OBO_LEEWAY", DEFAULT_LEEWAY)
        )
        if self.leeway < 0:
            raise ConfigurationError("PAIGEANT_OBO_LEEWAY must not be negative")
        self.required_claims = list(required_claims)
        self._secret: bytes | None = None
        self._public_key: Any = None
        self._jwks_url: UrlJwks | None = None
        self._jwks_file: FileJwks | None = None
        source = given[chosen[0]]
        assert source is not None
        if uses_secret:
            self._secret = source.encode() if isinstance(source, str) else source
        elif chosen[0] == "public_key":
            setting = "public_key" if public_key is not None else "PAIGEANT_OBO_PUBLIC_KEY"
            self._public_key = parse_public_key(read_pem(source, what=setting), setting)
            usable = [alg for alg in self.algorithms if alg in _algorithms_for(self._public_key)]
            if not usable:
                raise ConfigurationError(
                    f"{setting} is a {type(self._public_key).__name__}, which none of the "
                    f"pinned algorithms ({', '.join(self.algorithms)}) can verify"
                )
            self.algorithms = usable
        else:
            location = source.decode() if isinstance(source, bytes) else source
            if "://" in location:
                self._jwks_url = UrlJwks(
                    location,
                    what="PAIGEANT_OBO_JWKS",
                    cache_ttl=_number(
                        jwks_cache_ttl, "PAIGEANT_OBO_JWKS_CACHE_TTL", DEFAULT_CACHE_TTL
                    ),
                    refetch_interval=_number(
                        jwks_refetch_interval,
                        "PAIGEANT_OBO_JWKS_REFETCH_INTERVAL",
                        DEFAULT_REFETCH_INTERVAL,
                    ),
                    max_stale=_number(
                        jwks_max_stale, "PAIGEANT_OBO_JWKS_MAX_STALE", DEFAULT_MAX_STALE
                    ),
                )
            else:
                self._jwks_file = FileJwks(location, what="PAIGEANT_OBO_JWKS")

    @staticmethod
    def _pinned(algorithms: str | Sequence[str] | None, uses_secret: bool) -> list[str]:
        pinned = _split(
            algorithms if algorithms is not None else env_str("PAIGEANT_OBO_ALGORITHMS")
        )
        if pinned is None:
            return list(SECRET_ALGORITHMS if uses_secret else ASYMMETRIC_ALGORITHMS)
        unknown = [alg for alg in pinned if alg not in _SUPPORTED]
        if unknown:
            raise ConfigurationError(
                f"PAIGEANT_OBO_ALGORITHMS: unsupported {', '.join(unknown)} "
                f"(choose from {', '.join(sorted(_SUPPORTED))}; 'none' is never accepted)"
            )
        mixed = [alg for alg in pinned if (alg in _HMAC) != uses_secret]
        if mixed:
            kind = "a shared secret" if uses_secret else "public keys"
            raise ConfigurationError(
                f"PAIGEANT_OBO_ALGORITHMS: {', '.join(mixed)} cannot be used with {kind} "
                "(mixing HMAC and public-key algorithms allows key-confusion forgeries)"
            )
        return pinned

    def validate(self, token: str) -> Mapping[str, Any]:
        """Return the claims of ``token``; InvalidTokenError (never quoting it) if not valid.

        A JWKS URL that must be fetched first is fetched in this thread (blocking it); in
        async code use ``validate_async``.
        """
        header = self._header(token)
        return self._decode(token, self._key_for(header), verify_exp=True)

    def validate_for_compensation(self, token: str) -> Mapping[str, Any]:
        """Like ``validate`` but an expired token is accepted: compensations must still run."""
        header = self._header(token)
        return self._decode(token, self._key_for(header), verify_exp=False)

    async def validate_async(self, token: str) -> Mapping[str, Any]:
        """``validate`` for the event loop: a JWKS fetch runs in a thread, keys are cached."""
        header = self._header(token)
        return self._decode(token, await self._key_for_async(header), verify_exp=True)

    async def validate_for_compensation_async(self, token: str) -> Mapping[str, Any]:
        """``validate_for_compensation`` for the event loop, as ``validate_async``."""
        header = self._header(token)
        return self._decode(token, await self._key_for_async(header), verify_exp=False)

    def _header(self, token: str) -> dict[str, Any]:
        """The token's header, once its algorithm is known to be pinned."""
        if not isinstance(token, str) or not token:
            raise InvalidTokenError("token is empty")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidTokenError("token is malformed (not a compact JWT)") from None
        if header.get("alg") not in self.algorithms:
            raise InvalidTokenError(
                f"token algorithm is not accepted (accepted: {', '.join(self.algorithms)})"
            )
        return header

    def _decode(self, token: str, key: Any, *, verify_exp: bool) -> dict[str, Any]:
        options: dict[str, Any] = {"require": self.required_claims, "verify_exp": verify_exp}
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=self.algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options=options,  # type: ignore[arg-type]
            )
        except jwt.PyJWTError as exc:
            raise InvalidTokenError(self._reason(exc)) from None
        except (TypeError, ValueError):  # a key of another type than the algorithm needs
            raise InvalidTokenError("token algorithm does not match its key") from None
        return claims

    def _reason(self, exc: jwt.PyJWTError) -> str:
        """A reason for ``exc`` built from fixed text and configuration, never from the token."""
        if isinstance(exc, jwt.ExpiredSignatureError):
            return "token has expired"
        if isinstance(exc, jwt.ImmatureSignatureError):
            return "token is not yet valid (nbf or iat is in the future)"
        if isinstance(exc, jwt.MissingRequiredClaimError):
            return f"token lacks the required {exc.claim!r} claim"
        if isinstance(exc, jwt.InvalidAudienceError):
            if not self.audience:
                return "token names an audience but PAIGEANT_OBO_AUDIENCE is not set"
            return f"token audience is not accepted (expected {', '.join(self.audience)})"
        if isinstance(exc, jwt.InvalidIssuerError):
            return f"token issuer is not accepted (expected {self.issuer})"
        if isinstance(exc, jwt.InvalidSignatureError):
            return "token signature does not verify"
        if isinstance(exc, jwt.InvalidAlgorithmError | jwt.InvalidKeyError):
            return "token algorithm does not match its key"
        if isinstance(exc, jwt.DecodeError):
            return "token is malformed"
        return f"token is not valid ({type(exc).__name__})"

    def _kid(self, header: Mapping[str, Any]) -> str | None:
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise InvalidTokenError("token key id is malformed")
        return kid

    def _key_for(self, header: Mapping[str, Any]) -> Any:
        if self._secret is not None:
            return self._secret
        if self._public_key is not None:
            return self._public_key
        if self._jwks_file is not None:
            return self._jwks_file.key(self._kid(header))
        assert self._jwks_url is not None
        return self._jwks_url.key(self._kid(header))

    async def _key_for_async(self, header: Mapping[str, Any]) -> Any:
        if self._jwks_url is not None:
            return await self._jwks_url.key_async(self._kid(header))
        return self._key_for(header)  # in memory, or a local file: nothing to wait for


def _number(value: float | None, variable: str, default: float) -> float:
    return float(value) if value is not None else env_float(variable, default)
