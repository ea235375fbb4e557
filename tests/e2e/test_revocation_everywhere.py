"""Revocation across processes, concurrent refreshes, and 2-second access tokens, over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace

import httpx
import jwt
import pytest

from api.config.settings import Settings
from tests.e2e.conftest import Users
from tests.e2e.server import Server, settings_env


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def second_server(e2e_settings: Settings) -> Iterator[Server]:
    """Another server process on the same Postgres and Redis (another host, in effect)."""
    server = Server(settings_env(e2e_settings), workers=1)
    yield server
    server.stop()


async def test_logout_through_one_server_is_refused_by_the_other_at_once(
    http: httpx.AsyncClient, second_server: Server, users: Users
) -> None:
    email = await users.register(http)
    phone = await users.login(http, email)
    laptop = await users.login(http, email)
    async with httpx.AsyncClient(base_url=second_server.url) as other:
        assert (
            await other.get("/auth/verify", headers=_bearer(phone["access_token"]))
        ).status_code == 204
        await http.post("/auth/logout", headers=_bearer(phone["access_token"]))
        refused = await other.get("/auth/verify", headers=_bearer(phone["access_token"]))
        assert refused.status_code == 401 and refused.json()["code"] == "token_revoked"
        assert (
            await other.get("/auth/verify", headers=_bearer(laptop["access_token"]))
        ).status_code == 204

        await http.post("/auth/logout-all", headers=_bearer(laptop["access_token"]))
        refused = await other.get("/auth/verify", headers=_bearer(laptop["access_token"]))
        assert refused.json()["code"] == "token_revoked"
        refresh = await other.post("/auth/refresh", headers=_bearer(laptop["refresh_token"]))
        assert refresh.json()["code"] == "token_revoked"


async def test_concurrent_refreshes_with_one_token_never_fork_the_chain(
    http: httpx.AsyncClient, second_server: Server, users: Users, e2e_settings: Settings
) -> None:
    email = await users.register(http)
    tokens = await users.login(http, email)
    async with httpx.AsyncClient(base_url=second_server.url, timeout=30) as other:
        clients = [http, other] * 10
        responses = await asyncio.gather(
            *(c.post("/auth/refresh", headers=_bearer(tokens["refresh_token"])) for c in clients)
        )
    assert {r.status_code for r in responses} == {200}, [r.text for r in responses]
    jtis = {
        jwt.decode(r.json()["refresh_token"], e2e_settings.jwt_secret_key, ["HS256"])["jti"]
        for r in responses
    }
    assert len(jtis) == 1, "two refreshes won: the chain forked"


async def test_two_second_access_token_expires_and_refresh_still_works(
    e2e_settings: Settings, users: Users
) -> None:
    short = replace(e2e_settings, access_token_ttl=2)
    server = Server(settings_env(short), workers=1)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            email = await users.register(http)
            tokens = await users.login(http, email)
            assert tokens["expires_in"] == 2
            await asyncio.sleep(3)
            expired = await http.get("/me", headers=_bearer(tokens["access_token"]))
            assert expired.status_code == 401
            assert expired.json()["code"] == "token_expired"
            assert expired.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
            refreshed = await http.post("/auth/refresh", headers=_bearer(tokens["refresh_token"]))
            assert refreshed.status_code == 200
            me = await http.get("/me", headers=_bearer(refreshed.json()["access_token"]))
            assert me.status_code == 200
    finally:
        server.stop()


async def test_every_204_route_answers_through_the_real_server(
    http: httpx.AsyncClient, users: Users
) -> None:
    email = await users.register(http)
    first = await users.login(http, email)
    second = await users.login(http, email)
    third = await users.login(http, email)
    auth = _bearer(first["access_token"])
    assert (await http.get("/auth/verify", headers=auth)).status_code == 204
    deleted = await http.delete(f"/auth/sessions/{second['session_id']}", headers=auth)
    assert deleted.status_code == 204
    changed = await http.post(
        "/me/password",
        json={
            "current_password": "a long enough passphrase",
            "new_password": "another long passphrase",
        },
        headers=auth,
    )
    assert changed.status_code == 204
    revoked = await http.post("/auth/logout", headers=_bearer(third["access_token"]))
    assert revoked.json()["code"] == "token_revoked", "a password change signs other devices out"
    fourth = await http.post(
        "/auth/login", json={"email": email, "password": "another long passphrase"}
    )
    logout = await http.post("/auth/logout", headers=_bearer(fourth.json()["access_token"]))
    assert logout.status_code == 204
    assert (await http.post("/auth/logout-all", headers=auth)).status_code == 204
    fresh = await http.post(
        "/auth/login", json={"email": email, "password": "another long passphrase"}
    )
    gone = await http.request(
        "DELETE",
        "/me",
        json={"password": "another long passphrase"},
        headers=_bearer(fresh.json()["access_token"]),
    )
    assert gone.status_code == 204
