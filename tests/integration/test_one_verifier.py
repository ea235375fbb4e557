"""Every route that takes an access token accepts exactly the same tokens: the verify
lane (bearer GET /auth/verify), the Flask guard with a bearer token (GET /me), and the
cookie transport (GET /me and GET /auth/verify with the access cookie) answer a table
of validly signed odd tokens alike, and never with a 5xx."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
import pytest

from api.config.settings import Settings
from api.security.transport import ACCESS_COOKIE
from tests.integration.conftest import Harness

ABSENT = object()
# Times are worked out when the token is made (a suite can take longer than their margin
# to reach this test): a claim given as a function gets `now`.
ODD_CLAIMS: list[tuple[str, dict[str, Any], str]] = [
    ("no type", {"type": ABSENT}, "token_invalid"),
    ("refresh type", {"type": "refresh"}, "token_invalid"),
    ("unexpected aud", {"aud": "another-service"}, "token_invalid"),
    ("empty aud", {"aud": ""}, "token_invalid"),
    ("unexpected iss", {"iss": "https://elsewhere.example"}, "token_invalid"),
    ("role not a string", {"role": ["admin"]}, "token_invalid"),
    ("role with CR/LF", {"role": "admin\r\nX-Auth-User: someone"}, "token_invalid"),
    ("role with NUL", {"role": "user\x00"}, "token_invalid"),
    ("no role", {"role": ABSENT}, "token_invalid"),
    ("fresh not a bool", {"fresh": 1}, "token_invalid"),
    ("sub not a UUID", {"sub": "../../admin"}, "token_invalid"),
    ("sub a number", {"sub": 42}, "token_invalid"),
    ("sid not a UUID", {"sid": "x" * 300}, "token_invalid"),
    ("no sid", {"sid": ABSENT}, "token_invalid"),
    ("jti in braces", {"jti": f"{{{uuid.UUID(int=7)}}}"}, "token_invalid"),
    ("exp a string", {"exp": lambda now: str(int(now) + 600)}, "token_invalid"),
    ("exp a float", {"exp": lambda now: now + 600.5}, "ok"),
    ("exp past as float", {"exp": lambda now: now - 0.5}, "token_expired"),
    ("iat a string", {"iat": lambda now: str(int(now))}, "token_invalid"),
    ("nbf in the future", {"nbf": lambda now: int(now) + 600}, "token_invalid"),
    ("no nbf", {"nbf": ABSENT}, "token_invalid"),
    ("exp huge", {"exp": 10**30}, "token_invalid"),
]


def _odd_token(access_token: str, settings: Settings, changes: dict[str, Any]) -> str:
    claims = jwt.decode(access_token, settings.jwt_secret_key, algorithms=["HS256"])
    now = time.time()
    for name, value in changes.items():
        if value is ABSENT:
            claims.pop(name, None)
        else:
            claims[name] = value(now) if callable(value) else value
    return jwt.encode(claims, settings.jwt_secret_key, algorithm="HS256")


async def _answers(harness: Harness, token: str) -> dict[str, tuple[int, str | None]]:
    client = harness.client
    bearer = {"Authorization": f"Bearer {token}"}
    responses = {
        "lane": await client.get("/auth/verify", headers=bearer),
        "guard": await client.get("/me", headers=bearer),
    }
    client.cookies.set(ACCESS_COOKIE, token)
    try:
        responses["cookie /me"] = await client.get("/me")
        responses["cookie verify"] = await client.get("/auth/verify")
    finally:
        client.cookies.clear()
    answers = {}
    for path, response in responses.items():
        assert response.status_code < 500, (path, response.text)
        code = response.json().get("code") if response.content else None
        answers[path] = (response.status_code // 100, code)
    return answers


@pytest.mark.parametrize(
    ("case", "changes", "expected"), ODD_CLAIMS, ids=[c[0] for c in ODD_CLAIMS]
)
async def test_lane_guard_and_cookie_answer_odd_tokens_alike(
    harness: Harness, settings: Settings, case: str, changes: dict[str, Any], expected: str
) -> None:
    _, access = await harness.user_with_token(f"odd-{uuid.uuid4().hex[:8]}@example.com")
    answers = await _answers(harness, _odd_token(access, settings, changes))
    wanted = (2, None) if expected == "ok" else (4, expected)
    assert set(answers.values()) == {wanted}, answers


async def test_a_revoked_token_is_refused_alike_everywhere(harness: Harness) -> None:
    _, access = await harness.user_with_token("revoked-alike@example.com")
    await harness.client.post("/auth/logout", headers={"Authorization": f"Bearer {access}"})
    answers = await _answers(harness, access)
    assert set(answers.values()) == {(4, "token_revoked")}, answers
