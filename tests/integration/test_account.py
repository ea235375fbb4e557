"""POST /me/password and DELETE /me: fresh tokens, password checks, what they revoke."""

from __future__ import annotations

from tests.integration.conftest import Harness, bearer

EMAIL = "account@example.com"
PASSWORD = "a long enough passphrase"
NEW_PASSWORD = "an even longer new passphrase"


async def _two_devices(harness: Harness) -> tuple[dict[str, str], dict[str, str]]:
    await harness.register(EMAIL)
    return await harness.login(EMAIL), await harness.login(EMAIL)


async def _verify(harness: Harness, access: str) -> int:
    return (await harness.client.get("/auth/verify", headers=bearer(access))).status_code


async def test_change_password_keeps_current_session_and_revokes_the_others(
    harness: Harness,
) -> None:
    current, other = await _two_devices(harness)
    response = await harness.client.post(
        "/me/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(current["access_token"]),
    )
    assert response.status_code == 204
    assert await _verify(harness, current["access_token"]) == 204
    assert await _verify(harness, other["access_token"]) == 401
    old = await harness.client.post("/auth/login", json={"email": EMAIL, "password": PASSWORD})
    assert old.json()["code"] == "invalid_credentials"
    await harness.login(EMAIL, NEW_PASSWORD)


async def test_change_password_needs_a_fresh_token(harness: Harness) -> None:
    current, _ = await _two_devices(harness)
    refreshed = await harness.client.post("/auth/refresh", headers=bearer(current["refresh_token"]))
    response = await harness.client.post(
        "/me/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(refreshed.json()["access_token"]),
    )
    assert response.status_code == 401
    assert response.json()["code"] == "fresh_token_required"
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


async def test_change_password_with_wrong_current_password_is_invalid_credentials(
    harness: Harness,
) -> None:
    current, other = await _two_devices(harness)
    response = await harness.client.post(
        "/me/password",
        json={"current_password": "not the password at all", "new_password": NEW_PASSWORD},
        headers=bearer(current["access_token"]),
    )
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"
    assert await _verify(harness, other["access_token"]) == 204


async def test_change_password_to_a_weak_one_is_validation_error(harness: Harness) -> None:
    current, _ = await _two_devices(harness)
    for weak in ("short", "123456789abc"):
        response = await harness.client.post(
            "/me/password",
            json={"current_password": PASSWORD, "new_password": weak},
            headers=bearer(current["access_token"]),
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "new_password"


async def test_delete_me_deletes_account_and_revokes_everything(harness: Harness) -> None:
    current, other = await _two_devices(harness)
    response = await harness.client.request(
        "DELETE", "/me", json={"password": PASSWORD}, headers=bearer(current["access_token"])
    )
    assert response.status_code == 204
    for tokens in (current, other):
        assert await _verify(harness, tokens["access_token"]) == 401
        refresh = await harness.client.post(
            "/auth/refresh", headers=bearer(tokens["refresh_token"])
        )
        assert refresh.json()["code"] == "token_revoked"
    login = await harness.client.post("/auth/login", json={"email": EMAIL, "password": PASSWORD})
    assert login.json()["code"] == "invalid_credentials"
    await harness.register(EMAIL)


async def test_delete_me_with_wrong_password_keeps_the_account(harness: Harness) -> None:
    current, _ = await _two_devices(harness)
    response = await harness.client.request(
        "DELETE",
        "/me",
        json={"password": "not the password at all"},
        headers=bearer(current["access_token"]),
    )
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"
    me = await harness.client.get("/me", headers=bearer(current["access_token"]))
    assert me.status_code == 200


async def test_delete_me_needs_a_fresh_token(harness: Harness) -> None:
    current, _ = await _two_devices(harness)
    refreshed = await harness.client.post("/auth/refresh", headers=bearer(current["refresh_token"]))
    response = await harness.client.request(
        "DELETE",
        "/me",
        json={"password": PASSWORD},
        headers=bearer(refreshed.json()["access_token"]),
    )
    assert response.json()["code"] == "fresh_token_required"
