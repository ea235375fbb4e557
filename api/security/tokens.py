"""Issuing tokens: the pair a session gets, and Flask-JWT-Extended's cookie configuration.

What a presented token is worth is decided by api.security.verifier alone."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from flask import Flask
from flask_jwt_extended import JWTManager

from api.config.settings import Settings
from api.security.keys import KeySet
from api.security.permissions import permissions_of
from api.security.transport import (
    ACCESS_COOKIE,
    CSRF_ACCESS_COOKIE,
    CSRF_HEADER,
    CSRF_METHODS,
    CSRF_REFRESH_COOKIE,
    REFRESH_COOKIE,
)

# RFC 8176 method names: a password alone, or with a one-time code or a recovery code.
PASSWORD_ONLY = ("pwd",)
WITH_ONE_TIME_CODE = ("pwd", "otp")
WITH_RECOVERY_CODE = ("pwd", "recovery")
SECOND_FACTORS = frozenset({"otp", "recovery"})
AMR_VALUES = frozenset({"pwd", *SECOND_FACTORS})


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    access_jti: str
    refresh_jti: uuid.UUID
    expires_in: int
    refresh_expires_in: int
    refresh_expires_at: datetime
    remember: bool = False


def configure_tokens(app: Flask, settings: Settings, keys: KeySet) -> None:
    """Configure Flask-JWT-Extended, which sets the cookies, from `settings`,
    signing with the signing key of `keys`."""
    app.config.update(
        JWT_ALGORITHM=keys.algorithm,
        # Only one of the two pairs is used, by the algorithm's kind. The public key lets
        # Flask-JWT-Extended read the CSRF value back out of the token it sets as a cookie.
        JWT_SECRET_KEY=None if keys.is_asymmetric else keys.signing_key,
        JWT_PRIVATE_KEY=keys.signing_key if keys.is_asymmetric else None,
        JWT_PUBLIC_KEY=keys.signing.key if keys.is_asymmetric else None,
        JWT_TOKEN_LOCATION=["headers", "cookies"],
        # Browser transport: HttpOnly session cookies (no Max-Age) with double-submit CSRF.
        JWT_SESSION_COOKIE=True,
        JWT_COOKIE_SECURE=settings.cookie_secure,
        JWT_COOKIE_SAMESITE="Strict",
        JWT_COOKIE_CSRF_PROTECT=True,
        JWT_ACCESS_COOKIE_NAME=ACCESS_COOKIE,
        JWT_REFRESH_COOKIE_NAME=REFRESH_COOKIE,
        JWT_ACCESS_CSRF_COOKIE_NAME=CSRF_ACCESS_COOKIE,
        JWT_REFRESH_CSRF_COOKIE_NAME=CSRF_REFRESH_COOKIE,
        JWT_ACCESS_CSRF_HEADER_NAME=CSRF_HEADER,
        JWT_REFRESH_CSRF_HEADER_NAME=CSRF_HEADER,
        JWT_CSRF_METHODS=sorted(CSRF_METHODS),
        JWT_ACCESS_TOKEN_EXPIRES=timedelta(seconds=settings.access_token_ttl),
        JWT_REFRESH_TOKEN_EXPIRES=timedelta(seconds=settings.refresh_token_ttl),
        JWT_ENCODE_NBF=True,
        JWT_ENCODE_ISSUER=settings.jwt_issuer,
        JWT_ENCODE_AUDIENCE=settings.jwt_audience,
        JWT_IDENTITY_CLAIM="sub",
    )
    # One manager per app: it sets cookies; TokenIssuer signs, api.security.verifier checks.
    JWTManager(app)


class TokenIssuer:
    """Signs the pairs sessions get with the signing key of one KeySet; needs no Flask app.

    The claims and headers are those Flask-JWT-Extended writes (its cookies read `csrf`
    back), so a token does not tell which of the two signed it."""

    def __init__(self, settings: Settings, keys: KeySet) -> None:
        self._settings = settings
        self._keys = keys
        # Every token names the key that signed it, so verifiers pick it from the JWKS by kid.
        self._headers = {"kid": keys.signing.kid}

    def issue(
        self,
        *,
        user_id: uuid.UUID,
        role: str,
        session_id: uuid.UUID,
        fresh: bool,
        refresh_jti: uuid.UUID | None = None,
        refresh_expires_at: datetime | None = None,
        issued_at: float | None = None,
        remember: bool = False,
        amr: tuple[str, ...] = PASSWORD_ONLY,
    ) -> IssuedTokens:
        """A new access token and a refresh token for one session.

        By default the refresh token starts a new link of the chain (a new jti, the full
        lifetime); `refresh_jti` and `refresh_expires_at` re-issue the current link instead.
        The access token carries the permissions ROLE_PERMISSIONS grants `role`.
        `issued_at` (default: now) is the moment the facts in the tokens were read: a
        revocation after it covers them.
        `remember` marks the refresh token of a cookie login that stays signed in.
        `amr` (RFC 8176) says how the session's login authenticated; both tokens carry it, so
        a refresh keeps it.
        """
        settings = self._settings
        # Sub-second `iat` lets a "revoked before T" mark tell apart tokens issued
        # in the same second just before and just after T.
        now = time.time() if issued_at is None else issued_at
        issued = datetime.fromtimestamp(now, UTC)
        refresh_jti = refresh_jti or uuid.uuid4()
        refresh_expires_at = refresh_expires_at or issued + timedelta(
            seconds=settings.refresh_token_ttl
        )
        access_jti = str(uuid.uuid4())
        sid = str(session_id)
        access_token = self._encode(
            user_id,
            "access",
            fresh,
            {
                "sid": sid,
                "role": role,
                "permissions": permissions_of(settings.role_permissions, role),
                "amr": list(amr),
                "jti": access_jti,
                "iat": now,
                "nbf": int(now),
                # Counted from `iat`, not from the moment of encoding.
                "exp": int(now) + settings.access_token_ttl,
            },
        )
        refresh_claims: dict[str, object] = {
            "sid": sid,
            "jti": str(refresh_jti),
            "iat": now,
            "amr": list(amr),
        }
        if remember:
            refresh_claims["remember"] = True
        refresh_token = self._encode(
            user_id,
            "refresh",
            False,
            {**refresh_claims, "nbf": int(now), "exp": int(refresh_expires_at.timestamp())},
        )
        return IssuedTokens(
            access_token=access_token,
            refresh_token=refresh_token,
            access_jti=access_jti,
            refresh_jti=refresh_jti,
            expires_in=settings.access_token_ttl,
            refresh_expires_in=max(int((refresh_expires_at - issued).total_seconds()), 0),
            refresh_expires_at=refresh_expires_at,
            remember=remember,
        )

    def _encode(
        self, user_id: uuid.UUID, token_type: str, fresh: bool, claims: dict[str, object]
    ) -> str:
        # Flask-JWT-Extended's claims in its order (csrf: its double-submit cookie value);
        # `claims` sets the times and the jti.
        payload: dict[str, object] = {
            "fresh": fresh,
            "iat": None,
            "jti": None,
            "type": token_type,
            "sub": str(user_id),
            "nbf": None,
            "csrf": str(uuid.uuid4()),
        }
        if self._settings.jwt_audience:
            payload["aud"] = self._settings.jwt_audience
        if self._settings.jwt_issuer:
            payload["iss"] = self._settings.jwt_issuer
        payload["exp"] = None
        payload.update(claims)
        return jwt.encode(
            payload, self._keys.signing_key, self._keys.algorithm, headers=self._headers
        )
