"""AccessTokenDecoder, the verify lane's verifier: same rules as the Flask guard, and a
cache of verified tokens that never outlives a token's `exp`."""

from __future__ import annotations

import secrets
import time
import uuid

import jwt
import pytest

from api.errors import TokenExpired, TokenInvalid
from api.security.tokens import AccessTokenDecoder
from api.settings import Settings

SETTINGS = Settings.from_env({"APP_ENV": "test", "JWT_SECRET_KEY": secrets.token_urlsafe(48)})


def _token(**overrides: object) -> str:
    now = time.time()
    claims = {
        "sub": str(uuid.uuid4()),
        "sid": str(uuid.uuid4()),
        "jti": str(uuid.uuid4()),
        "iat": now,
        "nbf": int(now),
        "exp": int(now) + 60,
        "type": "access",
        "fresh": True,
        "role": "user",
        **overrides,
    }
    return jwt.encode(claims, SETTINGS.jwt_secret_key, algorithm="HS256")


def test_a_remembered_token_is_refused_once_it_expires() -> None:
    decoder = AccessTokenDecoder(SETTINGS)
    token = _token(exp=int(time.time()) + 2)
    assert decoder.decode(token).role == "user"
    assert decoder.decode(token).role == "user"
    time.sleep(2.1)
    with pytest.raises(TokenExpired):
        decoder.decode(token)


def test_invalid_tokens_are_never_remembered() -> None:
    decoder = AccessTokenDecoder(SETTINGS)
    forged = jwt.encode({"sub": "x"}, "another key that is long enough!!", algorithm="HS256")
    for _ in range(2):
        with pytest.raises(TokenInvalid):
            decoder.decode(forged)


def test_the_cache_stays_within_its_size() -> None:
    decoder = AccessTokenDecoder(SETTINGS, cache_size=3)
    tokens = [_token() for _ in range(5)]
    for token in tokens:
        decoder.decode(token)
    assert len(decoder._verified) == 3
    assert set(decoder._verified) == set(tokens[2:])
