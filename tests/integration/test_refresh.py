"""POST /auth/refresh: rotation on every use, the reuse grace window, reuse detection."""

from __future__ import annotations

import jwt

from api.config.settings import Settings
from db.emails import normalise_email
from tests.integration.conftest import (
    Harness,
    HarnessFactory,
    MovableClock,
    bearer,
)
from tests.integration.problems import assert_problem


async def _session(harness: Harness, email: str = "refresh@example.com") -> dict[str, str]:
    await harness.register(email)
    return dict(await harness.login(email))


async def test_refresh_rotates_the_refresh_token_and_issues_non_fresh_access(
    harness: Harness, settings: Settings
) -> None:
    tokens = await _session(harness)
    response = await harness.client.post("/auth/refresh", headers=bearer(tokens["refresh_token"]))
    assert response.status_code == 200
    body = response.json()
    assert body["session_id"] == tokens["session_id"]
    assert body["refresh_token"] != tokens["refresh_token"]
    old = jwt.decode(tokens["refresh_token"], settings.jwt_secret_key, algorithms=["HS256"])
    new = jwt.decode(body["refresh_token"], settings.jwt_secret_key, algorithms=["HS256"])
    assert new["jti"] != old["jti"] and new["sid"] == old["sid"] and new["type"] == "refresh"
    access = jwt.decode(body["access_token"], settings.jwt_secret_key, algorithms=["HS256"])
    assert access["fresh"] is False
    me = await harness.client.get("/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200


async def test_superseded_refresh_token_within_grace_gets_the_current_link(
    harness: Harness, settings: Settings
) -> None:
    tokens = await _session(harness)
    first = await harness.client.post("/auth/refresh", headers=bearer(tokens["refresh_token"]))
    again = await harness.client.post("/auth/refresh", headers=bearer(tokens["refresh_token"]))
    assert again.status_code == 200
    first_jti = jwt.decode(first.json()["refresh_token"], settings.jwt_secret_key, ["HS256"])["jti"]
    again_jti = jwt.decode(again.json()["refresh_token"], settings.jwt_secret_key, ["HS256"])["jti"]
    assert again_jti == first_jti, "a retry within the grace window must not start a new chain"
    # The chain goes on from the current link.
    onward = await harness.client.post(
        "/auth/refresh", headers=bearer(again.json()["refresh_token"])
    )
    assert onward.status_code == 200


async def test_refresh_token_reused_after_grace_revokes_session(
    make_harness: HarnessFactory, settings: Settings
) -> None:
    clock = MovableClock()
    harness = await make_harness(clock=clock)
    await harness.register("reuse@example.com")
    tokens = await harness.login("reuse@example.com")
    rotated = await harness.client.post("/auth/refresh", headers=bearer(tokens["refresh_token"]))
    assert rotated.status_code == 200
    clock.advance(settings.refresh_reuse_grace + 1)
    reused = await harness.client.post("/auth/refresh", headers=bearer(tokens["refresh_token"]))
    assert reused.status_code == 401
    assert reused.json()["code"] == "refresh_token_reused"
    assert reused.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    # The whole session is gone: the newest tokens and the first access token too.
    for access in (tokens["access_token"], rotated.json()["access_token"]):
        me = await harness.client.get("/me", headers=bearer(access))
        assert me.json()["code"] == "token_revoked"
    newest = await harness.client.post(
        "/auth/refresh", headers=bearer(rotated.json()["refresh_token"])
    )
    assert newest.json()["code"] == "token_revoked"


async def test_access_token_is_refused_by_refresh(harness: Harness) -> None:
    tokens = await _session(harness)
    response = await harness.client.post("/auth/refresh", headers=bearer(tokens["access_token"]))
    assert response.status_code == 401
    assert response.json()["code"] == "token_invalid"


async def test_refresh_without_token_is_token_missing(harness: Harness) -> None:
    response = await harness.client.post("/auth/refresh")
    assert response.status_code == 401
    assert response.json()["code"] == "token_missing"
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_refresh_after_logout_is_token_revoked(harness: Harness) -> None:
    tokens = await _session(harness)
    await harness.client.post("/auth/logout", headers=bearer(tokens["access_token"]))
    response = await harness.client.post("/auth/refresh", headers=bearer(tokens["refresh_token"]))
    assert response.status_code == 401
    assert response.json()["code"] == "token_revoked"


async def test_refresh_of_disabled_account_is_account_disabled(harness: Harness) -> None:
    tokens = await _session(harness)
    async with harness.resources.database.unit_of_work() as uow:
        user = await uow.users.get_by_email(normalise_email("refresh@example.com"))
        assert user is not None
        user.disabled = True
        await uow.commit()
    response = await harness.client.post("/auth/refresh", headers=bearer(tokens["refresh_token"]))
    assert response.status_code == 403
    assert response.json()["code"] == "account_disabled"


async def test_refresh_updates_last_used_at(make_harness: HarnessFactory) -> None:
    clock = MovableClock()
    harness = await make_harness(clock=clock)
    tokens = await _session(harness)
    listed = await harness.client.get("/auth/sessions", headers=bearer(tokens["access_token"]))
    before = listed.json()["sessions"][0]["last_used_at"]
    clock.advance(1)
    refreshed = await harness.client.post("/auth/refresh", headers=bearer(tokens["refresh_token"]))
    listed = await harness.client.get(
        "/auth/sessions", headers=bearer(refreshed.json()["access_token"])
    )
    assert listed.json()["sessions"][0]["last_used_at"] > before


async def test_cookie_refresh_needs_csrf_header_and_answers_with_cookies(harness: Harness) -> None:
    await harness.register("cookie@example.com")
    login = await harness.client.post(
        "/auth/login",
        json={
            "email": "cookie@example.com",
            "password": "a long enough passphrase",
            "transport": "cookie",
        },
    )
    assert login.status_code == 200
    csrf = harness.client.cookies["csrf_refresh_token"]
    without = await harness.client.post("/auth/refresh")
    assert without.status_code == 403
    assert without.json()["code"] == "forbidden"
    with_csrf = await harness.client.post("/auth/refresh", headers={"X-CSRF-Token": csrf})
    assert with_csrf.status_code == 200
    assert "refresh_token" not in with_csrf.json()
    assert "refresh_token_cookie" in with_csrf.headers.get("set-cookie", "")


async def test_refresh_token_in_a_json_body_is_exchanged_like_the_header(harness: Harness) -> None:
    tokens = await _session(harness)
    response = await harness.client.post(
        "/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert response.status_code == 200, response.text
    assert response.json()["session_id"] == tokens["session_id"]
    wrong_type = await harness.client.post(
        "/auth/refresh", json={"refresh_token": tokens["access_token"]}
    )
    assert wrong_type.status_code == 401 and wrong_type.json()["code"] == "token_invalid"


async def test_refresh_body_without_a_token_is_token_missing_and_a_bad_one_invalid(
    harness: Harness,
) -> None:
    for body in ({"refresh": "x"}, {}, None):
        response = await harness.client.post("/auth/refresh", json=body)
        assert response.status_code == 401 and response.json()["code"] == "token_missing", body
    for body in ({"refresh_token": ""}, {"refresh_token": None}, {"refresh_token": 1}):
        response = await harness.client.post("/auth/refresh", json=body)
        assert response.status_code == 422, body
        assert response.json()["code"] == "validation_error"


async def test_a_token_of_the_wrong_type_says_which_one_was_sent(harness: Harness) -> None:
    tokens = await _session(harness, "mixed-up@example.com")
    access_as_refresh = [
        await harness.client.post("/auth/refresh", headers=bearer(tokens["access_token"])),
        await harness.client.post("/auth/refresh", json={"refresh_token": tokens["access_token"]}),
    ]
    refresh_as_access = [
        await harness.client.get("/me", headers=bearer(tokens["refresh_token"])),
        await harness.client.get("/auth/verify", headers=bearer(tokens["refresh_token"])),
    ]
    for response in access_as_refresh:
        body = assert_problem(response, 401, "token_invalid")
        assert body["detail"] == "An access token was sent where a refresh token is needed."
        assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    for response in refresh_as_access:
        body = assert_problem(response, 401, "token_invalid")
        assert body["detail"] == "A refresh token was sent where an access token is needed."
