"""The access-token guard, seen through GET /me: every way a token can be refused."""

from __future__ import annotations

import base64
import json
import time
import uuid
import warnings
from typing import Any

import jwt
import pytest
from jwt.warnings import InsecureKeyLengthWarning
from sqlalchemy import delete

from api.config.settings import Settings
from db.models import User
from tests.integration.conftest import Harness
from tests.integration.problems import INVALID_TOKEN_CHALLENGE, assert_problem


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def claims_of(token: str, settings: Settings) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, settings.jwt_secret_key, algorithms=["HS256"])
    return claims


def b64url(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def get_me_refused(harness: Harness, token: str, code: str) -> None:
    response = await harness.client.get("/me", headers=bearer(token))
    assert_problem(response, 401, code)
    assert response.headers["WWW-Authenticate"] == INVALID_TOKEN_CHALLENGE


async def test_no_token_is_token_missing_with_bare_challenge(harness: Harness) -> None:
    response = await harness.client.get("/me")
    assert_problem(response, 401, "token_missing")
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.e30."])
async def test_malformed_token_is_token_invalid(harness: Harness, token: str) -> None:
    await get_me_refused(harness, token, "token_invalid")


async def test_token_signed_with_another_secret_is_token_invalid(
    harness: Harness, settings: Settings
) -> None:
    _, access = await harness.user_with_token()
    forged = jwt.encode(claims_of(access, settings), "o" * 48, algorithm="HS256")
    await get_me_refused(harness, forged, "token_invalid")


async def test_alg_none_token_is_token_invalid(harness: Harness, settings: Settings) -> None:
    _, access = await harness.user_with_token()
    header = {"alg": "none", "typ": "JWT"}
    unsigned = f"{b64url(header)}.{b64url(claims_of(access, settings))}."
    await get_me_refused(harness, unsigned, "token_invalid")


async def test_token_with_other_algorithm_and_right_secret_is_token_invalid(
    harness: Harness, settings: Settings
) -> None:
    _, access = await harness.user_with_token()
    with warnings.catch_warnings():
        # HS512 wants a 64-byte key; the point here is only the algorithm.
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        token = jwt.encode(claims_of(access, settings), settings.jwt_secret_key, algorithm="HS512")
    await get_me_refused(harness, token, "token_invalid")


async def test_refresh_token_used_as_access_token_is_token_invalid(harness: Harness) -> None:
    await harness.register("a@example.com")
    tokens = await harness.login("a@example.com")
    await get_me_refused(harness, tokens["refresh_token"], "token_invalid")


async def test_expired_token_is_token_expired(harness: Harness, settings: Settings) -> None:
    _, access = await harness.user_with_token()
    now = time.time()
    claims = {**claims_of(access, settings), "iat": now - 1000, "nbf": now - 1000}
    expired = jwt.encode({**claims, "exp": int(now) - 100}, settings.jwt_secret_key)
    await get_me_refused(harness, expired, "token_expired")


async def test_token_of_revoked_session_is_token_revoked(
    harness: Harness, settings: Settings
) -> None:
    user, access = await harness.user_with_token()
    sid = claims_of(access, settings)["sid"]
    await harness.resources.revocations.revoke_sessions(user["id"], [sid], 60)
    await get_me_refused(harness, access, "token_revoked")


async def test_revoke_issued_before_refuses_older_tokens_only(harness: Harness) -> None:
    user, before_mark = await harness.user_with_token()
    await harness.resources.revocations.revoke_issued_before(user["id"], time.time(), 60)
    await get_me_refused(harness, before_mark, "token_revoked")
    after_mark = (await harness.login("user@example.com"))["access_token"]
    response = await harness.client.get("/me", headers=bearer(after_mark))
    assert response.status_code == 200, response.text


async def test_token_of_deleted_user_is_token_revoked(harness: Harness) -> None:
    user, access = await harness.user_with_token()
    async with harness.resources.database.unit_of_work() as uow:
        await uow.session.execute(delete(User).where(User.id == uuid.UUID(user["id"])))
        await uow.commit()
    await get_me_refused(harness, access, "token_revoked")


async def test_valid_token_reaches_me(harness: Harness) -> None:
    user, access = await harness.user_with_token()
    response = await harness.client.get("/me", headers=bearer(access))
    assert response.status_code == 200, response.text
    assert response.json()["id"] == user["id"]
