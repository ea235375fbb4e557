"""Token rules in one place: JWT configuration, issuing, reading, and every
Flask-JWT-Extended callback turned into the problem responses of API.md."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt as pyjwt
from flask import Flask, Response
from flask_jwt_extended import (
    JWTManager,
    create_access_token,
    create_refresh_token,
    get_jwt,
    get_jwt_request_location,
    verify_jwt_in_request,
)

from api.errors import (
    FreshTokenRequired,
    TokenExpired,
    TokenInvalid,
    TokenMissing,
    TokenRevoked,
    problem,
)
from api.settings import Settings

jwt = JWTManager()


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    access_jti: str
    refresh_jti: uuid.UUID
    expires_in: int
    refresh_expires_in: int
    refresh_expires_at: datetime


@dataclass(frozen=True)
class RefreshClaims:
    """What a verified refresh token says: whose session, which link of its chain."""

    user_id: str
    session_id: str
    jti: str
    issued_at: float
    expires_at: float


@dataclass(frozen=True)
class AccessClaims(RefreshClaims):
    """What a verified access token says about its bearer."""

    role: str
    fresh: bool


def configure_tokens(app: Flask, settings: Settings) -> None:
    """Configure Flask-JWT-Extended from `settings` and register its callbacks."""
    app.config.update(
        JWT_SECRET_KEY=settings.jwt_secret_key,
        JWT_ALGORITHM=settings.jwt_algorithm,
        # Pinned: a token naming any other algorithm, `none` included, is rejected.
        JWT_DECODE_ALGORITHMS=[settings.jwt_algorithm],
        JWT_TOKEN_LOCATION=["headers", "cookies"],
        # Browser transport: HttpOnly session cookies (no Max-Age) with double-submit CSRF.
        JWT_SESSION_COOKIE=True,
        JWT_COOKIE_SECURE=settings.cookie_secure,
        JWT_COOKIE_SAMESITE="Strict",
        JWT_COOKIE_CSRF_PROTECT=True,
        JWT_ACCESS_CSRF_HEADER_NAME="X-CSRF-Token",
        JWT_REFRESH_CSRF_HEADER_NAME="X-CSRF-Token",
        JWT_ACCESS_TOKEN_EXPIRES=timedelta(seconds=settings.access_token_ttl),
        JWT_REFRESH_TOKEN_EXPIRES=timedelta(seconds=settings.refresh_token_ttl),
        JWT_ENCODE_NBF=True,
        JWT_ENCODE_ISSUER=settings.jwt_issuer,
        JWT_DECODE_ISSUER=settings.jwt_issuer,
        JWT_ENCODE_AUDIENCE=settings.jwt_audience,
        JWT_DECODE_AUDIENCE=settings.jwt_audience,
        JWT_IDENTITY_CLAIM="sub",
        JWT_DECODE_LEEWAY=0,
    )
    jwt.init_app(app)
    _register_callbacks(jwt)


def _register_callbacks(manager: JWTManager) -> None:
    @manager.unauthorized_loader
    def missing(_reason: str) -> Response:
        return problem(TokenMissing())

    @manager.invalid_token_loader
    def invalid(_reason: str) -> Response:
        return problem(TokenInvalid())

    @manager.expired_token_loader
    def expired(_header: dict[str, Any], _payload: dict[str, Any]) -> Response:
        return problem(TokenExpired())

    @manager.needs_fresh_token_loader
    def not_fresh(_header: dict[str, Any], _payload: dict[str, Any]) -> Response:
        return problem(FreshTokenRequired())

    @manager.revoked_token_loader
    def revoked(_header: dict[str, Any], _payload: dict[str, Any]) -> Response:
        return problem(TokenRevoked())

    @manager.token_verification_failed_loader
    def failed(_header: dict[str, Any], _payload: dict[str, Any]) -> Response:
        return problem(TokenInvalid())

    @manager.user_lookup_error_loader
    def unknown_user(_header: dict[str, Any], _payload: dict[str, Any]) -> Response:
        return problem(TokenRevoked())


def issue_tokens(
    *,
    user_id: uuid.UUID,
    role: str,
    session_id: uuid.UUID,
    fresh: bool,
    settings: Settings,
    refresh_jti: uuid.UUID | None = None,
    refresh_expires_at: datetime | None = None,
) -> IssuedTokens:
    """A new access token and a refresh token for one session.

    By default the refresh token starts a new link of the chain (a new jti, the full
    lifetime); `refresh_jti` and `refresh_expires_at` re-issue the current link instead.
    """
    # Sub-second `iat` lets a "revoked before T" mark tell apart tokens issued
    # in the same second just before and just after T.
    now = time.time()
    issued = datetime.fromtimestamp(now, UTC)
    refresh_jti = refresh_jti or uuid.uuid4()
    refresh_expires_at = refresh_expires_at or issued + timedelta(
        seconds=settings.refresh_token_ttl
    )
    access_jti = str(uuid.uuid4())
    sid = str(session_id)
    access_token = create_access_token(
        identity=str(user_id),
        fresh=fresh,
        additional_claims={"sid": sid, "role": role, "jti": access_jti, "iat": now},
    )
    refresh_token = create_refresh_token(
        identity=str(user_id),
        expires_delta=refresh_expires_at - issued,
        additional_claims={"sid": sid, "jti": str(refresh_jti), "iat": now},
    )
    return IssuedTokens(
        access_token=access_token,
        refresh_token=refresh_token,
        access_jti=access_jti,
        refresh_jti=refresh_jti,
        expires_in=settings.access_token_ttl,
        refresh_expires_in=max(int((refresh_expires_at - issued).total_seconds()), 0),
        refresh_expires_at=refresh_expires_at,
    )


def read_access_token(*, fresh: bool = False) -> AccessClaims:
    """Verify the request's access token (signature, algorithm, type, expiry, freshness).

    Raises:
        TokenMissing, TokenInvalid: no usable token (FJE's own errors are mapped
        by the callbacks above).
    """
    return access_claims(_verified_claims(refresh=False, fresh=fresh))


class AccessTokenDecoder:
    """Verifies a bearer access token without Flask: for the event-loop lane of /auth/verify.

    Built from the same settings as configure_tokens, with the same pinned algorithm,
    key, issuer and audience, and no leeway; it decodes once where Flask-JWT-Extended
    decodes twice inside an app context. A gateway presents the same token many times
    in its short life, so verified tokens are remembered (as Envoy's JWT filter does):
    a remembered token is still refused once `exp` passes, and revocation is asked of
    Redis on every request whatever this cache holds. Only the event loop calls it.
    """

    def __init__(self, settings: Settings, cache_size: int = 10_000) -> None:
        self._key = settings.jwt_secret_key
        self._algorithms = [settings.jwt_algorithm]
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._jwt = pyjwt.PyJWT({"require": ["exp", "iat", "sub", "jti"]})
        self._verified: dict[str, AccessClaims] = {}
        self._cache_size = cache_size

    def decode(self, token: str) -> AccessClaims:
        """The claims of a valid access token.

        Raises:
            TokenExpired: `exp` has passed.
            TokenInvalid: anything else wrong with the token.
        """
        claims = self._verified.get(token)
        if claims is None:
            claims = self._verify(token)
            if len(self._verified) >= self._cache_size:
                # Oldest first: dicts keep insertion order.
                del self._verified[next(iter(self._verified))]
            self._verified[token] = claims
        if claims.expires_at <= time.time():
            self._verified.pop(token, None)
            raise TokenExpired()
        return claims

    def _verify(self, token: str) -> AccessClaims:
        try:
            claims = self._jwt.decode(
                token,
                self._key,
                algorithms=self._algorithms,
                issuer=self._issuer,
                audience=self._audience,
                leeway=0,
            )
        except pyjwt.ExpiredSignatureError:
            raise TokenExpired() from None
        except (pyjwt.InvalidTokenError, ValueError):
            raise TokenInvalid() from None
        return access_claims(claims)


def access_claims(claims: dict[str, Any]) -> AccessClaims:
    """The claims of a verified access token, checked for shape.

    Raises:
        TokenInvalid: not an access token, or a claim is missing or malformed.
    """
    if claims.get("type") != "access":
        raise TokenInvalid()
    try:
        return AccessClaims(
            **_common_claims(claims), role=str(claims["role"]), fresh=bool(claims["fresh"])
        )
    except (KeyError, TypeError):
        raise TokenInvalid() from None


def read_refresh_token() -> RefreshClaims:
    """Verify the request's refresh token, from the Authorization header or the cookie.

    Raises:
        TokenMissing, TokenInvalid: no usable token.
    """
    return RefreshClaims(**_common_claims(_verified_claims(refresh=True, fresh=False)))


def token_came_from_cookie() -> bool:
    """Whether the verified token of this request travelled in a cookie."""
    return bool(get_jwt_request_location() == "cookies")


def _verified_claims(*, refresh: bool, fresh: bool) -> dict[str, Any]:
    if verify_jwt_in_request(refresh=refresh, fresh=fresh) is None:
        raise TokenMissing()
    claims: dict[str, Any] = get_jwt()
    return claims


def _common_claims(claims: dict[str, Any]) -> dict[str, Any]:
    # Only our own signed tokens get here, but a malformed claim must still be a
    # clean token_invalid, never a 500 (or a Redis key built from garbage).
    try:
        return {
            "user_id": str(uuid.UUID(claims["sub"])),
            "session_id": str(uuid.UUID(claims["sid"])),
            "jti": str(uuid.UUID(claims["jti"])),
            "issued_at": float(claims["iat"]),
            "expires_at": float(claims["exp"]),
        }
    except (KeyError, TypeError, ValueError, AttributeError):
        raise TokenInvalid() from None
