"""TokenVerifier's decoding: the claim rules, and a cache of verified tokens that never
outlives a token's `exp`. (Revocation and the routes are covered by the integration
tests; here nothing reaches Redis.)"""

from __future__ import annotations

import secrets
import time
import uuid
from typing import Any

import jwt
import pytest
from redis.asyncio import Redis

from api.config.settings import Settings
from api.domain.errors import TokenExpired, TokenInvalid
from api.security.keys import KeySet
from api.security.verifier import TokenVerifier
from db.revocation_store import RevocationStore

SETTINGS = Settings.from_env({"APP_ENV": "test", "JWT_SECRET_KEY": secrets.token_urlsafe(48)})


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def _verifier(**options: Any) -> TokenVerifier:
    # The client connects lazily: decoding never touches Redis.
    keys = KeySet.from_settings(SETTINGS)
    return TokenVerifier(SETTINGS, RevocationStore(Redis()), keys=keys, **options)


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
        "permissions": [],
        **overrides,
    }
    return jwt.encode(claims, SETTINGS.jwt_secret_key, algorithm="HS256")


def test_a_remembered_token_is_refused_once_it_expires() -> None:
    clock = Clock()
    verifier = _verifier(clock=clock)
    token = _token(exp=int(clock.now) + 30)
    assert verifier.access_claims(token).role == "user"
    assert verifier.access_claims(token).role == "user"
    clock.now += 31
    with pytest.raises(TokenExpired):
        verifier.access_claims(token)


def test_invalid_tokens_are_never_remembered() -> None:
    verifier = _verifier()
    forged = jwt.encode({"sub": "x"}, "another key that is long enough!!", algorithm="HS256")
    for _ in range(2):
        with pytest.raises(TokenInvalid):
            verifier.access_claims(forged)
    assert verifier._verified == {}


def test_the_cache_stays_within_its_size() -> None:
    verifier = _verifier(cache_size=3)
    tokens = [_token() for _ in range(5)]
    for token in tokens:
        verifier.access_claims(token)
    assert len(verifier._verified) == 3
    assert set(verifier._verified) == set(tokens[2:])


@pytest.mark.parametrize(
    "odd",
    [
        {"type": None},
        {"type": "refresh"},
        {"aud": "somebody"},
        {"aud": ""},
        {"iss": "somebody"},
        {"role": 7},
        {"role": "admin\r\nX-Injected: 1"},
        {"role": ""},
        {"permissions": None},
        {"permissions": "users:read"},
        {"permissions": ["users:read,audit:read"]},
        {"permissions": ["users:read\r\nX-Injected: 1"]},
        {"permissions": [7]},
        {"permissions": ["p"] * 65},
        {"fresh": "yes"},
        {"sub": "not-a-uuid"},
        {"sub": 12},
        {"sid": None},
        {"jti": "{" + str(uuid.UUID(int=1)) + "}"},
        {"exp": str(int(time.time()) + 86_400)},
        {"iat": True},
        {"nbf": None},
        {"csrf": 5},
    ],
    ids=repr,
)
def test_validly_signed_odd_tokens_are_invalid(odd: dict[str, Any]) -> None:
    claims = {k: v for k, v in odd.items() if v is not None}
    token = _token(**claims)
    if None in odd.values():
        payload = jwt.decode(token, options={"verify_signature": False})
        for name, value in odd.items():
            if value is None:
                payload.pop(name, None)
        token = jwt.encode(payload, SETTINGS.jwt_secret_key, algorithm="HS256")
    with pytest.raises(TokenInvalid):
        _verifier().access_claims(token)
