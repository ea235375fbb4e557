"""Logout, logout everywhere, listing and revoking device sessions, forward-auth verify."""

from __future__ import annotations

import uuid

from tests.integration.conftest import Harness, bearer
from tests.integration.problems import without_request_id

EMAIL = "devices@example.com"


async def _two_devices(harness: Harness) -> tuple[dict[str, str], dict[str, str]]:
    await harness.register(EMAIL)
    phone = await harness.login(EMAIL, device_name="phone")
    laptop = await harness.login(EMAIL, device_name="laptop")
    return phone, laptop


async def _code(harness: Harness, access: str) -> str | None:
    response = await harness.client.get("/auth/verify", headers=bearer(access))
    return None if response.status_code == 204 else response.json()["code"]


async def test_logout_revokes_only_the_current_session(harness: Harness) -> None:
    phone, laptop = await _two_devices(harness)
    response = await harness.client.post("/auth/logout", headers=bearer(phone["access_token"]))
    assert response.status_code == 204
    assert response.content == b""
    assert await _code(harness, phone["access_token"]) == "token_revoked"
    assert await _code(harness, laptop["access_token"]) is None
    refresh = await harness.client.post("/auth/refresh", headers=bearer(phone["refresh_token"]))
    assert refresh.json()["code"] == "token_revoked"


async def test_logout_revokes_every_access_token_of_the_session(harness: Harness) -> None:
    phone, _ = await _two_devices(harness)
    refreshed = await harness.client.post("/auth/refresh", headers=bearer(phone["refresh_token"]))
    await harness.client.post("/auth/logout", headers=bearer(refreshed.json()["access_token"]))
    assert await _code(harness, phone["access_token"]) == "token_revoked"


async def test_logout_all_revokes_every_device_and_allows_a_new_login(harness: Harness) -> None:
    phone, laptop = await _two_devices(harness)
    response = await harness.client.post("/auth/logout-all", headers=bearer(laptop["access_token"]))
    assert response.status_code == 204
    for tokens in (phone, laptop):
        assert await _code(harness, tokens["access_token"]) == "token_revoked"
        refresh = await harness.client.post(
            "/auth/refresh", headers=bearer(tokens["refresh_token"])
        )
        assert refresh.json()["code"] == "token_revoked"
    again = await harness.login(EMAIL)
    assert await _code(harness, again["access_token"]) is None


async def test_sessions_lists_active_sessions_newest_first_with_current_flag(
    harness: Harness,
) -> None:
    phone, laptop = await _two_devices(harness)
    response = await harness.client.get("/auth/sessions", headers=bearer(laptop["access_token"]))
    assert response.status_code == 200
    sessions = response.json()["sessions"]
    assert [s["device_name"] for s in sessions] == ["laptop", "phone"]
    assert [s["current"] for s in sessions] == [True, False]
    assert set(sessions[0]) == {
        "id",
        "device_name",
        "created_at",
        "last_used_at",
        "ip",
        "user_agent",
        "current",
    }
    await harness.client.post("/auth/logout", headers=bearer(phone["access_token"]))
    response = await harness.client.get("/auth/sessions", headers=bearer(laptop["access_token"]))
    assert [s["id"] for s in response.json()["sessions"]] == [laptop["session_id"]]


async def test_delete_session_signs_out_that_device_only(harness: Harness) -> None:
    phone, laptop = await _two_devices(harness)
    response = await harness.client.delete(
        f"/auth/sessions/{phone['session_id']}", headers=bearer(laptop["access_token"])
    )
    assert response.status_code == 204
    assert await _code(harness, phone["access_token"]) == "token_revoked"
    assert await _code(harness, laptop["access_token"]) is None


async def test_delete_session_of_another_user_or_unknown_is_not_found(harness: Harness) -> None:
    phone, _ = await _two_devices(harness)
    await harness.register("other@example.com")
    other = await harness.login("other@example.com")
    for session_id in (phone["session_id"], str(uuid.uuid4()), "not-a-uuid"):
        response = await harness.client.delete(
            f"/auth/sessions/{session_id}", headers=bearer(other["access_token"])
        )
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
    assert await _code(harness, phone["access_token"]) is None


async def test_delete_already_revoked_session_is_not_found(harness: Harness) -> None:
    phone, laptop = await _two_devices(harness)
    path = f"/auth/sessions/{phone['session_id']}"
    await harness.client.delete(path, headers=bearer(laptop["access_token"]))
    again = await harness.client.delete(path, headers=bearer(laptop["access_token"]))
    assert again.status_code == 404


async def test_verify_answers_204_with_identity_headers(harness: Harness) -> None:
    user = await harness.register(EMAIL)
    tokens = await harness.login(EMAIL)
    response = await harness.client.get("/auth/verify", headers=bearer(tokens["access_token"]))
    assert response.status_code == 204
    assert response.headers["X-Auth-User"] == user["id"]
    assert response.headers["X-Auth-Session"] == tokens["session_id"]
    assert response.headers["X-Auth-Role"] == "user"


async def test_verify_refuses_refresh_tokens_and_missing_tokens(harness: Harness) -> None:
    await harness.register(EMAIL)
    tokens = await harness.login(EMAIL)
    wrong = await harness.client.get("/auth/verify", headers=bearer(tokens["refresh_token"]))
    assert wrong.status_code == 401 and wrong.json()["code"] == "token_invalid"
    missing = await harness.client.get("/auth/verify")
    assert missing.status_code == 401 and missing.json()["code"] == "token_missing"


async def test_cookie_logout_needs_csrf_and_clears_cookies(harness: Harness) -> None:
    await harness.register(EMAIL)
    login = await harness.client.post(
        "/auth/login",
        json={"email": EMAIL, "password": "a long enough passphrase", "transport": "cookie"},
    )
    assert login.status_code == 200
    refused = await harness.client.post("/auth/logout")
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
    csrf = harness.client.cookies["csrf_access_token"]
    response = await harness.client.post("/auth/logout", headers={"X-CSRF-Token": csrf})
    assert response.status_code == 204
    assert "access_token_cookie=;" in response.headers.get("set-cookie", "")


async def test_verify_accepts_the_cookie_transport_too(harness: Harness) -> None:
    await harness.register(EMAIL)
    login = await harness.client.post(
        "/auth/login",
        json={"email": EMAIL, "password": "a long enough passphrase", "transport": "cookie"},
    )
    assert login.status_code == 200
    response = await harness.client.get("/auth/verify")
    assert response.status_code == 204
    assert response.headers["X-Auth-Session"] == login.json()["session_id"]


async def test_verify_lane_and_flask_view_refuse_a_revoked_token_alike(harness: Harness) -> None:
    await harness.register(EMAIL)
    tokens = await harness.login(EMAIL)
    await harness.client.post("/auth/logout", headers=bearer(tokens["access_token"]))
    lane = await harness.client.get("/auth/verify", headers=bearer(tokens["access_token"]))
    view = await harness.client.get("/me", headers=bearer(tokens["access_token"]))
    for response in (lane, view):
        assert response.status_code == 401
        assert response.headers["Content-Type"] == "application/problem+json"
        assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert without_request_id(lane.json()) == without_request_id(view.json())
