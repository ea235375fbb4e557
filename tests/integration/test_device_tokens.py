"""Device tokens (OWASP device cookies): guesses from elsewhere never lock the owner out,
and logins for addresses without an account are bounded across all IPs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import replace
from typing import Any

import httpx
import pytest

from api.config.settings import Settings
from api.security.device_tokens import DEVICE_COOKIE, MAX_DEVICE_TOKEN_LENGTH
from tests.integration.conftest import Harness, start_harness, stop_harness
from tests.integration.problems import assert_problem

PASSWORD = "a long enough passphrase"
WRONG = "wrong password!!"
OWNER_IP = "192.0.2.10"


@asynccontextmanager
async def _harness(settings: Settings, **overrides: Any) -> AsyncIterator[Harness]:
    # Limits on, at their defaults unless overridden; one trusted proxy, so each request
    # can come from an IP of its own.
    limited = replace(settings, rate_limits_enabled=True, trusted_proxy_hops=1, **overrides)
    _, harness = await start_harness(limited)
    emails: list[str] = []
    harness.created = emails  # type: ignore[attr-defined]
    try:
        async with harness.client:
            yield harness
    finally:
        await stop_harness(harness, *emails)


@pytest.fixture
async def limited(settings: Settings) -> AsyncIterator[Harness]:
    async with _harness(settings) as harness:
        yield harness


@contextmanager
def _hashing_calls(harness: Harness) -> Iterator[list[str]]:
    """Every argon2 hash or verify the app runs: all go through Passwords._run's pool."""
    calls: list[str] = []
    passwords: Any = harness.resources.passwords
    original = passwords._run

    async def recording(func: Any, *args: Any) -> Any:
        calls.append(func.__name__)
        return await original(func, *args)

    passwords._run = recording
    try:
        yield calls
    finally:
        passwords._run = original


async def _register(harness: Harness, email: str) -> None:
    harness.created.append(email)  # type: ignore[attr-defined]
    response = await harness.client.post(
        "/auth/register",
        json={"email": email, "password": PASSWORD},
        headers={"X-Forwarded-For": OWNER_IP},
    )
    assert response.status_code == 201, response.text


async def _login(
    harness: Harness, email: str, password: str, ip: str, **extra: Any
) -> httpx.Response:
    return await harness.client.post(
        "/auth/login",
        json={"email": email, "password": password, **extra},
        headers={"X-Forwarded-For": ip},
    )


async def _owner_with_device_token(harness: Harness, email: str) -> str:
    await _register(harness, email)
    response = await _login(harness, email, PASSWORD, OWNER_IP, device_name="owner's phone")
    assert response.status_code == 200, response.text
    token: str = response.json()["device_token"]
    return token


async def _guesses_from_elsewhere(
    harness: Harness, email: str, count: int, **extra: Any
) -> list[int]:
    # All at once, each from an IP of its own: only the account's (or device's) limit
    # stands in the way.
    responses = await asyncio.gather(
        *(
            _login(harness, email, f"{WRONG} {n}", f"10.7.{n // 250}.{n % 250}", **extra)
            for n in range(count)
        )
    )
    for response in responses:
        if response.status_code == 429:
            assert_problem(response, 429, "rate_limited")
            assert int(response.headers["Retry-After"]) > 0
    return [r.status_code for r in responses]


def _assert_limited(response: httpx.Response, limit: int) -> None:
    assert_problem(response, 429, "rate_limited")
    assert int(response.headers["Retry-After"]) > 0
    assert response.headers["RateLimit-Limit"] == str(limit)
    assert response.headers["RateLimit-Remaining"] == "0"
    assert int(response.headers["RateLimit-Reset"]) > 0


async def test_owner_with_its_device_token_logs_in_at_once_after_50_guesses_from_elsewhere(
    limited: Harness,
) -> None:
    device_token = await _owner_with_device_token(limited, "owner@example.com")
    with _hashing_calls(limited) as calls:
        statuses = await _guesses_from_elsewhere(limited, "owner@example.com", 50)
        guesses_checked = calls.count("_verify")
        calls.clear()
        owner = await _login(
            limited, "owner@example.com", PASSWORD, OWNER_IP, device_token=device_token
        )
        owner_checks = calls.count("_verify")
        calls.clear()
        # The same IP and password without the device token: the account-wide limit holds.
        stranger = await _login(limited, "owner@example.com", PASSWORD, OWNER_IP)
        stranger_checks = calls.count("_verify")
    print(
        f"50 guesses: 401s {statuses.count(401)}, 429s {statuses.count(429)}, password checks "
        f"{guesses_checked}; owner with its device token: {owner.status_code} after "
        f"{owner_checks} check; without it: {stranger.status_code} after {stranger_checks}"
    )
    assert statuses.count(401) + statuses.count(429) == 50
    assert statuses.count(401) <= 5
    assert guesses_checked <= 5
    assert owner.status_code == 200, owner.text
    assert owner_checks == 1
    _assert_limited(stranger, 5)
    assert stranger_checks == 0


async def test_guesses_with_a_stolen_device_token_check_at_most_the_device_limit(
    limited: Harness,
) -> None:
    device_token = await _owner_with_device_token(limited, "stolen@example.com")
    for round_number in range(3):
        with _hashing_calls(limited) as calls:
            statuses = await _guesses_from_elsewhere(
                limited, "stolen@example.com", 30, device_token=device_token
            )
        checked = calls.count("_verify")
        print(f"round {round_number}: 401s {statuses.count(401)} of 30, checks {checked}")
        # DEVICE_FAILURE_LIMIT's 5 in the first round, none after: the window is 15 minutes.
        assert statuses.count(401) == checked <= (5 if round_number == 0 else 0)
    _assert_limited(
        await _login(limited, "stolen@example.com", PASSWORD, OWNER_IP, device_token=device_token),
        5,
    )
    # The device's budget is its own: the account-wide one is untouched.
    elsewhere = await _login(limited, "stolen@example.com", PASSWORD, "198.51.100.20")
    assert elsewhere.status_code == 200, elsewhere.text


async def test_another_accounts_device_token_counts_as_none(limited: Harness) -> None:
    mine = await _owner_with_device_token(limited, "holder@example.com")
    await _register(limited, "target@example.com")
    statuses = await _guesses_from_elsewhere(limited, "target@example.com", 10, device_token=mine)
    assert statuses.count(401) <= 5
    refused = await _login(limited, "target@example.com", PASSWORD, OWNER_IP, device_token=mine)
    _assert_limited(refused, 5)


@pytest.mark.parametrize(
    "presented",
    ["", "not a device token", "A" * 75, "é" * 40, "\x00" * 75, "A" * MAX_DEVICE_TOKEN_LENGTH],
)
async def test_a_malformed_device_token_counts_as_none(limited: Harness, presented: str) -> None:
    await _register(limited, "forged@example.com")
    await _guesses_from_elsewhere(limited, "forged@example.com", 5)
    refused = await _login(
        limited, "forged@example.com", PASSWORD, OWNER_IP, device_token=presented
    )
    _assert_limited(refused, 5)


@pytest.mark.parametrize(
    "presented", ["A" * (MAX_DEVICE_TOKEN_LENGTH + 1), 12345, ["token"], {"token": "x"}]
)
async def test_a_device_token_that_is_not_bounded_text_is_a_validation_error(
    limited: Harness, presented: object
) -> None:
    response = await _login(limited, "shape@example.com", WRONG, OWNER_IP, device_token=presented)
    body = assert_problem(response, 422, "validation_error")
    assert {error["field"] for error in body["errors"]} == {"device_token"}


async def test_a_successful_login_brings_a_new_device_token_and_the_old_one_still_counts(
    limited: Harness,
) -> None:
    first = await _owner_with_device_token(limited, "renewed@example.com")
    again = await _login(limited, "renewed@example.com", PASSWORD, OWNER_IP, device_token=first)
    second = again.json()["device_token"]
    assert second != first
    await _guesses_from_elsewhere(limited, "renewed@example.com", 20)
    for token in (first, second):
        login = await _login(limited, "renewed@example.com", PASSWORD, OWNER_IP, device_token=token)
        assert login.status_code == 200, login.text


async def test_cookie_clients_get_the_device_token_as_a_long_lived_httponly_cookie(
    limited: Harness,
) -> None:
    await _register(limited, "browser@example.com")
    login = await _login(limited, "browser@example.com", PASSWORD, OWNER_IP, transport="cookie")
    assert login.status_code == 200, login.text
    assert "device_token" not in login.json()
    [cookie] = [c for c in login.headers.get_list("Set-Cookie") if c.startswith(DEVICE_COOKIE)]
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "max-age", "path", "samesite"} <= attributes
    assert "Max-Age=31536000" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    # COOKIE_SECURE is false in the tests' environment (plain HTTP), as for the other cookies.
    assert "secure" not in attributes
    device_token = login.cookies[DEVICE_COOKIE]
    limited.client.cookies.clear()
    await _guesses_from_elsewhere(limited, "browser@example.com", 20)
    refused = await _login(limited, "browser@example.com", PASSWORD, OWNER_IP, transport="cookie")
    _assert_limited(refused, 5)
    owner = await limited.client.post(
        "/auth/login",
        json={"email": "browser@example.com", "password": PASSWORD, "transport": "cookie"},
        headers={"X-Forwarded-For": OWNER_IP, "Cookie": f"{DEVICE_COOKIE}={device_token}"},
    )
    assert owner.status_code == 200, owner.text
    limited.client.cookies.clear()


async def test_secure_cookies_make_the_device_cookie_secure(settings: Settings) -> None:
    async with _harness(settings, cookie_secure=True) as harness:
        await _register(harness, "secure@example.com")
        login = await _login(harness, "secure@example.com", PASSWORD, OWNER_IP, transport="cookie")
        [cookie] = [c for c in login.headers.get_list("Set-Cookie") if c.startswith(DEVICE_COOKIE)]
        assert "Secure" in cookie


async def test_a_distributed_guesser_of_unknown_addresses_is_bounded_while_users_log_in(
    settings: Settings,
) -> None:
    async with _harness(settings, login_unknown_limit="20/minute") as harness:
        users = [f"member{n}@example.com" for n in range(10)]
        for email in users:
            await _register(harness, email)
        for round_number in range(3):
            with _hashing_calls(harness) as calls:
                guesses = [
                    _login(
                        harness,
                        f"nobody-{round_number}-{n}@example.com",
                        WRONG,
                        f"10.8.{n // 250}.{n % 250}",
                    )
                    for n in range(60)
                ]
                members = [
                    _login(harness, email, PASSWORD, f"172.16.{round_number}.{n}")
                    for n, email in enumerate(users)
                ]
                answers = await asyncio.gather(*guesses, *members)
            guessed = [r.status_code for r in answers[:60]]
            logged_in = [r.status_code for r in answers[60:]]
            print(
                f"round {round_number}: guesser 401s {guessed.count(401)}, 429s "
                f"{guessed.count(429)} of 60; members 200s {logged_in.count(200)} of 10; "
                f"password checks {calls.count('_verify')}"
            )
            assert logged_in == [200] * 10
            assert guessed.count(401) + guessed.count(429) == 60
            # 20 a minute from every IP together: the first round takes them all.
            assert guessed.count(401) <= (20 if round_number == 0 else 0)
            assert calls.count("_verify") == 10 + guessed.count(401)
            for response in answers[:60]:
                if response.status_code == 429:
                    _assert_limited(response, 20)
        # Known addresses are not behind that limit: a wrong password is still a 401.
        typo = await _login(harness, users[0], WRONG, "172.16.9.9")
        assert_problem(typo, 401, "invalid_credentials")
