"""TokenVerifier: the one place that decides what a token is worth.

Every route that takes a token goes through it: the lanes in front of Flask, the
Flask guard (bearer and cookie), refresh and logout. It checks the signature with
the key the token's `kid` names and that key's own algorithm (api.security.keys),
the `type`, `iss`/`aud` (refused when present but not configured), the shape of
every claim, `exp` with no leeway, and then asks Redis the revocation questions in
one round trip (for an access token, none while REVOCATION_CACHE holds the answer:
db/revocation_cache.py). Flask-JWT-Extended issues tokens, sets and
clears cookies; it does not decide on its own what a token is worth.
"""

from __future__ import annotations

import math
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import jwt as pyjwt

from api.config.settings import Settings
from api.domain.errors import (
    AccountDisabled,
    DomainError,
    FreshTokenRequired,
    TokenExpired,
    TokenInvalid,
    TokenRevoked,
)
from api.edge.metrics import token_failures
from api.security.claims import AccessClaims, RefreshClaims
from api.security.keys import KeySet
from api.security.permissions import MAX_PERMISSIONS, PERMISSION_NAME
from api.security.tokens import AMR_VALUES, PASSWORD_ONLY
from db.revocation_cache import RevocationCache
from db.revocation_store import Revocation, RevocationStore

# Claims every token of this service carries; a token without one of them is not ours.
_REQUIRED = ["exp", "iat", "nbf", "sub", "jti"]
# A role travels into response headers (X-Auth-Role): no control characters, no commas.
_ROLE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


class TokenVerifier:
    """Verifies access and refresh tokens for one worker, remembering verified signatures.

    A gateway presents the same access token many times in its short life, so verified
    access tokens are remembered (as Envoy's JWT filter does) in a bounded cache: a
    remembered token is still refused once `exp` passes, and revocation is asked of
    Redis every time, whatever the cache holds, unless a `revocation_cache` (kept
    honest by the invalidation channel) remembers the answer for an access token.
    Refresh tokens always ask Redis. Only the worker's event loop calls it.
    """

    def __init__(
        self,
        settings: Settings,
        revocations: RevocationStore,
        *,
        keys: KeySet,
        cache_size: int = 10_000,
        clock: Callable[[], float] = time.time,
        revocation_cache: RevocationCache | None = None,
    ) -> None:
        self._keys = keys
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._jwt = pyjwt.PyJWT({"require": _REQUIRED})
        self._access_ttl = settings.access_token_ttl
        self._refresh_ttl = settings.refresh_token_ttl
        self._revocations = revocations
        self._revocation_cache = revocation_cache
        self._verified: dict[str, AccessClaims] = {}
        self._cache_size = cache_size
        self._clock = clock

    async def authenticate(self, token: str, *, fresh: bool = False) -> AccessClaims:
        """The claims of a valid, unrevoked access token.

        Raises:
            TokenInvalid, TokenExpired: the token is not a valid access token.
            TokenRevoked: the token, its session or everything of its user was revoked.
            FreshTokenRequired: `fresh` was asked and the token came from a refresh.
            StoreUnavailable: Redis did not answer (fail closed).
        """
        with token_failures():
            claims = self.access_claims(token)
            verdict = await self._access_revocation(claims)
            _refuse(verdict, disabled=TokenRevoked)
            if fresh and not claims.fresh:
                raise FreshTokenRequired()
        return claims

    async def refresh_claims(self, token: str) -> RefreshClaims:
        """The claims of a valid, unrevoked refresh token.

        Raises:
            TokenInvalid, TokenExpired, TokenRevoked, StoreUnavailable: as `authenticate`.
            AccountDisabled: an administrator disabled the token's user.
        """
        with token_failures():
            claims = _refresh_claims(self._decode(token), self._refresh_ttl)
            _refuse(await self._revocation(claims), disabled=AccountDisabled)
        return claims

    def access_claims(self, token: str) -> AccessClaims:
        """The claims of a validly signed, unexpired access token (revocation not asked).

        Raises:
            TokenExpired: `exp` has passed.
            TokenInvalid: anything else wrong with the token.
        """
        claims = self._verified.get(token)
        if claims is None:
            claims = _access_claims(self._decode(token), self._access_ttl)
            if len(self._verified) >= self._cache_size:
                # Oldest first: dicts keep insertion order.
                del self._verified[next(iter(self._verified))]
            self._verified[token] = claims
        if claims.expires_at <= self._clock():
            self._verified.pop(token, None)
            raise TokenExpired()
        return claims

    async def _access_revocation(self, claims: AccessClaims) -> Revocation:
        cache = self._revocation_cache
        if cache is None:
            return await self._revocation(claims)
        key = (claims.user_id, claims.session_id, claims.jti)
        verdict = cache.get(key)
        if verdict is None:
            # Taken before asking: an invalidation heard meanwhile keeps this answer out.
            ticket = cache.ticket()
            verdict = await self._revocation(claims)
            cache.put(ticket, key, verdict, claims.expires_at)
        return verdict

    async def _revocation(self, claims: RefreshClaims) -> Revocation:
        return await self._revocations.revocation(
            claims.user_id, claims.session_id, claims.jti, claims.issued_at
        )

    def _decode(self, token: str) -> dict[str, Any]:
        try:
            # The kid picks the key; the key pins the algorithm (never the token's `alg`).
            key = self._keys.key_for(pyjwt.get_unverified_header(token).get("kid"))
            if key is None:
                raise TokenInvalid()
            claims: dict[str, Any] = self._jwt.decode(
                token,
                key.key,
                algorithms=[key.algorithm],
                issuer=self._issuer,
                audience=self._audience,
                leeway=0,
            )
        except pyjwt.ExpiredSignatureError:
            raise TokenExpired() from None
        except (pyjwt.InvalidTokenError, ValueError, TypeError):
            raise TokenInvalid() from None
        # PyJWT checks `iss` only when one is expected, and lets an empty `aud` through:
        # a token naming an issuer or audience we never configured was not made by us.
        if (self._issuer is None and "iss" in claims) or (
            self._audience is None and "aud" in claims
        ):
            raise TokenInvalid()
        return claims


def _refuse(verdict: Revocation, *, disabled: type[DomainError]) -> None:
    if verdict is Revocation.DISABLED:
        raise disabled()
    if verdict is Revocation.REVOKED:
        raise TokenRevoked()


# A client that mixes up its two tokens is told which one it sent (the code stays the same).
_WRONG_TYPE = "{sent} token was sent where {needed} token is needed."


def _access_claims(claims: dict[str, Any], lifetime: int) -> AccessClaims:
    if claims.get("type") == "refresh":
        raise TokenInvalid(_WRONG_TYPE.format(sent="A refresh", needed="an access"))
    if claims.get("type") != "access":
        raise TokenInvalid()
    role, fresh = claims.get("role"), claims.get("fresh")
    if not isinstance(role, str) or not _ROLE.fullmatch(role) or not isinstance(fresh, bool):
        raise TokenInvalid()
    return AccessClaims(
        **_common_claims(claims, lifetime),
        role=role,
        permissions=_permissions(claims.get("permissions")),
        fresh=fresh,
    )


def _permissions(value: Any) -> tuple[str, ...]:
    # They travel into X-Auth-Permissions, comma-separated: a closed character set only.
    if not isinstance(value, list) or len(value) > MAX_PERMISSIONS:
        raise TokenInvalid()
    if not all(isinstance(p, str) and PERMISSION_NAME.fullmatch(p) for p in value):
        raise TokenInvalid()
    return tuple(value)


def _refresh_claims(claims: dict[str, Any], lifetime: int) -> RefreshClaims:
    if claims.get("type") == "access":
        raise TokenInvalid(_WRONG_TYPE.format(sent="An access", needed="a refresh"))
    if claims.get("type") != "refresh":
        raise TokenInvalid()
    remember = claims.get("remember", False)
    if not isinstance(remember, bool):
        raise TokenInvalid()
    return RefreshClaims(**_common_claims(claims, lifetime), remember=remember)


def _common_claims(claims: dict[str, Any], lifetime: int) -> dict[str, Any]:
    # Only tokens signed with our key get here, but a malformed claim must still be
    # a clean token_invalid, never a 500 (or a Redis key built from garbage).
    for name in ("iat", "exp", "nbf"):
        if not _is_numeric_date(claims[name]):
            raise TokenInvalid()
    # No token is issued for longer than its type's TTL; one that claims more was not
    # issued under these settings (and its revocation mark could not be kept for it).
    if claims["exp"] - claims["iat"] > lifetime + 1:
        raise TokenInvalid()
    return {
        "user_id": _uuid(claims["sub"]),
        "session_id": _uuid(claims.get("sid")),
        "jti": _uuid(claims["jti"]),
        "issued_at": float(claims["iat"]),
        "expires_at": float(claims["exp"]),
        "csrf": _optional_text(claims.get("csrf")),
        "amr": _amr(claims.get("amr")),
    }


def _amr(value: Any) -> tuple[str, ...]:
    # Tokens issued before the second factor existed carry none: a password login.
    if value is None:
        return PASSWORD_ONLY
    if (
        not isinstance(value, list)
        or not 1 <= len(value) <= len(AMR_VALUES)
        or not all(isinstance(method, str) and method in AMR_VALUES for method in value)
    ):
        raise TokenInvalid()
    return tuple(value)


def _is_numeric_date(value: Any) -> bool:
    # RFC 7519 NumericDate: a JSON number. PyJWT also takes "123" and True.
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _optional_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise TokenInvalid()


def _uuid(value: Any) -> str:
    if not isinstance(value, str):
        raise TokenInvalid()
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        raise TokenInvalid() from None
    # Only the canonical spelling: it becomes part of Redis keys and SQL parameters.
    if str(parsed) != value:
        raise TokenInvalid()
    return value
