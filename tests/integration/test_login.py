"""POST /auth/login: tokens, claims, sessions, credentials, rehash and cookie transport."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

import httpx
import jwt
from sqlalchemy import text, update

from api.config.settings import Settings
from db.emails import normalise_email
from db.models import User
from tests.integration.conftest import Harness, start_harness
from tests.integration.problems import assert_problem, without_request_id

PASSWORD = "a long enough passphrase"
TOKEN_FIELDS = {
    "access_token",
    "refresh_token",
    "token_type",
    "expires_in",
    "refresh_expires_in",
    "session_id",
    "device_token",
}


def decode(token: str, settings: Settings) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, settings.jwt_secret_key, algorithms=["HS256"])
    return claims


async def disable(harness: Harness, user_id: str) -> None:
    async with harness.resources.database.unit_of_work() as uow:
        await uow.session.execute(
            update(User).where(User.id == uuid.UUID(user_id)).values(disabled=True)
        )
        await uow.commit()


async def stored_hash(harness: Harness, email: str) -> str:
    async with harness.resources.database.unit_of_work() as uow:
        user = await uow.users.get_by_email(normalise_email(email))
    assert user is not None
    return user.password_hash


async def test_login_answers_tokens_and_session(harness: Harness, settings: Settings) -> None:
    await harness.register("a@example.com")
    body = await harness.login("a@example.com")
    assert set(body) == TOKEN_FIELDS
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert body["refresh_expires_in"] == settings.refresh_token_ttl
    assert uuid.UUID(body["session_id"])


async def test_access_token_carries_the_documented_claims(
    harness: Harness, settings: Settings
) -> None:
    user = await harness.register("a@example.com")
    body = await harness.login("a@example.com")
    claims = decode(body["access_token"], settings)
    assert claims["sub"] == user["id"]
    assert claims["sid"] == body["session_id"]
    assert claims["type"] == "access"
    assert claims["fresh"] is True
    assert claims["role"] == "user"
    assert uuid.UUID(claims["jti"])
    assert claims["nbf"] <= claims["exp"]
    assert abs(claims["exp"] - claims["iat"] - settings.access_token_ttl) <= 1


async def test_refresh_token_carries_the_documented_claims(
    harness: Harness, settings: Settings
) -> None:
    user = await harness.register("a@example.com")
    body = await harness.login("a@example.com")
    claims = decode(body["refresh_token"], settings)
    assert claims["type"] == "refresh"
    assert claims["sub"] == user["id"]
    assert claims["sid"] == body["session_id"]
    assert uuid.UUID(claims["jti"])
    assert abs(claims["exp"] - claims["iat"] - settings.refresh_token_ttl) <= 1


async def test_login_records_the_device_session(harness: Harness, settings: Settings) -> None:
    user = await harness.register("a@example.com")
    response = await harness.client.post(
        "/auth/login",
        json={"email": "a@example.com", "password": PASSWORD, "device_name": "Pixel 8"},
        headers={"User-Agent": "TestAgent/1.0"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    async with harness.resources.database.unit_of_work() as uow:
        session = await uow.sessions.get(uuid.UUID(body["session_id"]), uuid.UUID(user["id"]))
    assert session is not None
    assert session.device_name == "Pixel 8"
    assert session.ip == "127.0.0.1"
    assert session.user_agent == "TestAgent/1.0"
    assert session.revoked_at is None
    refresh_jti = decode(body["refresh_token"], settings)["jti"]
    assert str(session.current_refresh_jti) == refresh_jti


async def test_login_email_is_case_insensitive_and_trimmed(harness: Harness) -> None:
    await harness.register("Mixed.Case@example.com")
    body = await harness.login("  mixed.case@EXAMPLE.com ")
    assert body["access_token"]


async def test_login_unknown_email_and_wrong_password_answer_identically(
    harness: Harness,
) -> None:
    await harness.register("a@example.com")
    unknown = await harness.client.post(
        "/auth/login", json={"email": "nobody@example.com", "password": PASSWORD}
    )
    wrong = await harness.client.post(
        "/auth/login", json={"email": "a@example.com", "password": PASSWORD + "!"}
    )
    assert_problem(unknown, 401, "invalid_credentials")
    assert unknown.status_code == wrong.status_code
    assert without_request_id(unknown.json()) == without_request_id(wrong.json())
    assert set(unknown.headers) == set(wrong.headers)


async def test_login_disabled_account_with_right_password_is_account_disabled(
    harness: Harness,
) -> None:
    user = await harness.register("a@example.com")
    await disable(harness, user["id"])
    response = await harness.client.post(
        "/auth/login", json={"email": "a@example.com", "password": PASSWORD}
    )
    assert_problem(response, 403, "account_disabled")


async def test_login_disabled_account_with_wrong_password_is_invalid_credentials(
    harness: Harness,
) -> None:
    user = await harness.register("a@example.com")
    await disable(harness, user["id"])
    response = await harness.client.post(
        "/auth/login", json={"email": "a@example.com", "password": PASSWORD + "!"}
    )
    assert_problem(response, 401, "invalid_credentials")


async def test_login_rehashes_password_made_with_old_argon2_parameters(
    harness: Harness, settings: Settings
) -> None:
    await harness.register("a@example.com")
    old_hash = await stored_hash(harness, "a@example.com")
    assert "m=1024,t=1" in old_hash
    stronger = replace(settings, argon2_memory_kib=2048, argon2_time_cost=2)
    # Same rolled-back transaction as the harness, so nothing outlives the test.
    asgi, upgraded = await start_harness(stronger, bind=harness.bind)
    try:
        await upgraded.login("a@example.com")
    finally:
        await upgraded.client.aclose()
        await asgi.runtime.stop()
    new_hash = await stored_hash(harness, "a@example.com")
    assert new_hash != old_hash
    assert new_hash.startswith("$argon2id$")
    assert "m=2048,t=2" in new_hash
    await harness.login("a@example.com")


async def test_login_keeps_hash_made_with_current_parameters(harness: Harness) -> None:
    await harness.register("a@example.com")
    before = await stored_hash(harness, "a@example.com")
    await harness.login("a@example.com")
    assert await stored_hash(harness, "a@example.com") == before


async def test_each_login_opens_a_new_session(harness: Harness) -> None:
    await harness.register("a@example.com")
    first = await harness.login("a@example.com")
    second = await harness.login("a@example.com")
    assert first["session_id"] != second["session_id"]


def set_cookies(response: httpx.Response) -> dict[str, str]:
    """Each Set-Cookie header by cookie name."""
    headers = response.headers.get_list("set-cookie")
    return {header.split("=", 1)[0]: header for header in headers}


async def test_cookie_transport_keeps_tokens_out_of_the_body(harness: Harness) -> None:
    await harness.register("a@example.com")
    body = await harness.login("a@example.com", transport="cookie")
    assert "access_token" not in body
    assert "refresh_token" not in body
    assert body["token_type"] == "cookie"
    assert uuid.UUID(body["session_id"])


async def test_cookie_transport_sets_httponly_session_cookies(harness: Harness) -> None:
    await harness.register("a@example.com")
    response = await harness.client.post(
        "/auth/login", json={"email": "a@example.com", "password": PASSWORD, "transport": "cookie"}
    )
    assert response.status_code == 200, response.text
    cookies = set_cookies(response)
    for name in ("access_token_cookie", "refresh_token_cookie"):
        attributes = cookies[name].lower()
        assert "httponly" in attributes
        assert "samesite=" in attributes
        assert "max-age" not in attributes
        assert "expires" not in attributes
    assert {"csrf_access_token", "csrf_refresh_token"} <= set(cookies)


async def test_cookie_transport_authenticates_get_me_with_cookies_only(
    harness: Harness,
) -> None:
    user = await harness.register("a@example.com")
    response = await harness.client.post(
        "/auth/login", json={"email": "a@example.com", "password": PASSWORD, "transport": "cookie"}
    )
    access = response.cookies["access_token_cookie"]
    harness.client.cookies.clear()
    me = await harness.client.get("/me", headers={"Cookie": f"access_token_cookie={access}"})
    assert me.status_code == 200, me.text
    assert me.json()["id"] == user["id"]


# Every kind of unprintable character a device name could smuggle into a log or a terminal.
UNPRINTABLE = "\n\r\t\x1b\x07\x08\x7f\x85\x9b\u2028\u2029\u200b"


async def test_a_device_name_is_stored_without_control_characters(harness: Harness) -> None:
    user = await harness.register("device-name@example.com")
    sent = {
        "escape codes": "\x1b[31mred\x1b[0m laptop",
        "forged line": "phone\nlogin.succeeded user=admin",
        "C1 and DEL": "tab\x85let\x9b\x7f",
        "only controls": "\x1b\x07",
        "all of them": f"pc{UNPRINTABLE}pc",
    }
    stored: dict[str, tuple[Any, Any]] = {}
    assert harness.bind is not None
    for name, device_name in sent.items():
        tokens = await harness.login("device-name@example.com", device_name=device_name)
        row = (
            await harness.bind.execute(
                text(
                    "SELECT s.device_name, e.details->>'device_name' FROM sessions s"
                    " JOIN audit_events e ON e.session_id = s.id AND e.type = 'login.succeeded'"
                    " WHERE s.id = :id AND s.user_id = :user_id"
                ),
                {"id": tokens["session_id"], "user_id": user["id"]},
            )
        ).one()
        stored[name] = (row[0], row[1])
    print(f"device names stored: {stored}")
    assert stored == {
        "escape codes": ("[31mred[0m laptop",) * 2,
        "forged line": ("phonelogin.succeeded user=admin",) * 2,
        "C1 and DEL": ("tablet",) * 2,
        "only controls": ("",) * 2,
        "all of them": ("pcpc",) * 2,
    }
    for session_name, audit_name in stored.values():
        assert not any(c in UNPRINTABLE or not c.isprintable() for c in session_name + audit_name)
