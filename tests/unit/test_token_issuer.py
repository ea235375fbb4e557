"""Tokens are issued without any Flask app: the claims and headers Flask-JWT-Extended wrote."""

from __future__ import annotations

import uuid
from dataclasses import replace

import jwt
from flask import has_app_context
from flask_jwt_extended import create_access_token, create_refresh_token

from api import create_app
from api.config.settings import Settings
from api.security.keys import KeySet
from api.security.tokens import TokenIssuer


def _unverified(token: str) -> tuple[dict[str, object], dict[str, object]]:
    return jwt.get_unverified_header(token), jwt.decode(token, options={"verify_signature": False})


def test_tokens_are_issued_outside_any_app_context(settings: Settings) -> None:
    assert not has_app_context()
    keys = KeySet.from_settings(settings)
    tokens = TokenIssuer(settings, keys).issue(
        user_id=uuid.uuid4(), role="user", session_id=uuid.uuid4(), fresh=True
    )
    header, claims = _unverified(tokens.access_token)
    assert header["kid"] == keys.signing.kid
    assert claims["type"] == "access" and claims["jti"] == tokens.access_jti
    _, refresh = _unverified(tokens.refresh_token)
    assert refresh["type"] == "refresh" and refresh["jti"] == str(tokens.refresh_jti)


def test_the_claims_and_headers_are_those_flask_jwt_extended_writes(settings: Settings) -> None:
    settings = replace(settings, jwt_issuer="https://issuer.example", jwt_audience="auth-api")
    keys = KeySet.from_settings(settings)
    user_id, session_id = uuid.uuid4(), uuid.uuid4()
    ours = TokenIssuer(settings, keys).issue(
        user_id=user_id, role="user", session_id=session_id, fresh=True, issued_at=1e9
    )
    app = create_app(settings)
    with app.app_context():
        theirs = {
            "access": create_access_token(identity=str(user_id), fresh=True),
            "refresh": create_refresh_token(identity=str(user_id)),
        }
    for kind, token in (("access", ours.access_token), ("refresh", ours.refresh_token)):
        header, claims = _unverified(token)
        their_header, their_claims = _unverified(theirs[kind])
        assert header == {**their_header, "kid": keys.signing.kid}
        # Flask-JWT-Extended's claims, in its order, then ours (sid, role, amr...).
        assert list(claims)[: len(their_claims)] == list(their_claims)
        assert claims["iss"] == "https://issuer.example" and claims["aud"] == "auth-api"
