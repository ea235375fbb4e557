"""Cookie logins: browser-session cookies by default, persistent ones with "remember": true."""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import replace

import httpx
import jwt

from api.config.settings import Settings
from tests.integration.conftest import Harness, HarnessFactory, start_harness, stop_harness

PASSWORD = "a long enough passphrase"
ACCESS_COOKIES = ("access_token_cookie", "csrf_access_token")
REFRESH_COOKIES = ("refresh_token_cookie", "csrf_refresh_token")


def max_ages(response: httpx.Response) -> dict[str, int | None]:
    """Each cookie set by `response`, with its Max-Age (None: a browser-session cookie)."""
    ages: dict[str, int | None] = {}
    for header in response.headers.get_list("set-cookie"):
        name = header.split("=", 1)[0]
        found = re.search(r";\s*max-age=(\d+)", header, re.I)
        ages[name] = int(found.group(1)) if found else None
        if found is None:
            assert "expires=" not in header.lower(), header
    return ages


async def cookie_login(harness: Harness, email: str, **extra: object) -> httpx.Response:
    response = await harness.client.post(
        "/auth/login",
        json={"email": email, "password": PASSWORD, "transport": "cookie", **extra},
    )
    assert response.status_code == 200, response.text
    return response


async def cookie_refresh(harness: Harness) -> httpx.Response:
    csrf = harness.client.cookies["csrf_refresh_token"]
    response = await harness.client.post("/auth/refresh", headers={"X-CSRF-Token": csrf})
    assert response.status_code == 200, response.text
    return response


async def test_remembered_cookie_login_keeps_its_cookies_for_the_tokens_lifetimes(
    make_harness: HarnessFactory,
) -> None:
    harness = await make_harness(access_token_ttl=300, refresh_token_ttl=86_400)
    await harness.register("a@example.com")
    login = await cookie_login(harness, "a@example.com", remember=True)
    ages = max_ages(login)
    print(f"remembered login cookies: {ages}")
    assert all(ages[name] == 300 for name in ACCESS_COOKIES)
    assert all(ages[name] == 86_400 for name in REFRESH_COOKIES)
    assert login.json()["token_type"] == "cookie"

    # Every refresh of the chain stays remembered, however many times it rotates.
    for _ in range(3):
        ages = max_ages(await cookie_refresh(harness))
        assert all(ages[name] == 300 for name in ACCESS_COOKIES), ages
        assert all(86_390 <= (ages[name] or 0) <= 86_400 for name in REFRESH_COOKIES), ages


async def test_cookie_login_without_remember_sets_browser_session_cookies(
    harness: Harness,
) -> None:
    await harness.register("a@example.com")
    for login in (
        await cookie_login(harness, "a@example.com"),
        await cookie_login(harness, "a@example.com", remember=False),
    ):
        ages = max_ages(login)
        # The device cookie names the device, not the session: it is always persistent.
        assert ages.pop("device_token") == 365 * 24 * 3600
        assert set(ages) == {*ACCESS_COOKIES, *REFRESH_COOKIES}
        assert set(ages.values()) == {None}
    ages = max_ages(await cookie_refresh(harness))
    print(f"unremembered refresh cookies: {ages}")
    assert set(ages.values()) == {None}


async def test_concurrent_refreshes_of_a_remembered_session_all_stay_persistent(
    settings: Settings,
) -> None:
    """Racing refreshes (one wins, the rest are re-issued within the grace window) all keep
    the remembered cookies: none falls back to a browser-session cookie."""
    email = f"remember-{uuid.uuid4().hex}@example.com"
    _, harness = await start_harness(replace(settings, refresh_reuse_grace=60))
    try:
        await harness.register(email)
        await cookie_login(harness, email, remember=True)
        cookie = harness.client.cookies["refresh_token_cookie"]
        csrf = harness.client.cookies["csrf_refresh_token"]
        harness.client.cookies.clear()

        async def refresh() -> httpx.Response:
            return await harness.client.post(
                "/auth/refresh",
                headers={"X-CSRF-Token": csrf, "Cookie": f"refresh_token_cookie={cookie}"},
            )

        answers = await asyncio.gather(*(refresh() for _ in range(10)))
    finally:
        await stop_harness(harness, email)
    statuses = [r.status_code for r in answers]
    session_cookies = sum(
        age is None for r in answers if r.status_code == 200 for age in max_ages(r).values()
    )
    print(
        f"refreshes: {statuses.count(200)} of {len(statuses)} answered 200; "
        f"session cookies among them: {session_cookies}"
    )
    assert statuses == [200] * 10
    assert session_cookies == 0


async def test_remember_changes_nothing_for_bearer_logins(harness: Harness) -> None:
    await harness.register("a@example.com")
    body = await harness.login("a@example.com", remember=True)
    assert body["token_type"] == "Bearer"
    claims = jwt.decode(body["refresh_token"], options={"verify_signature": False})
    assert "remember" not in claims
