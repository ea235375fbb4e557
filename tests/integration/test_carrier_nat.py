"""A mobile carrier's NAT: thousands of honest users behind one IPv4 address log in and
register with the default limits, while one address guessing or scripting is still
stopped."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace

import httpx
import pytest

from api.config.settings import Settings
from scripts.seed import delete_seeded, hash_password, seed_users
from tests.integration.conftest import Harness, start_harness, stop_harness
from tests.integration.problems import assert_problem

PASSWORD = "a carrier subscriber's passphrase"
CARRIER_IP = "198.51.100.77"
# Concurrent requests in flight: enough to overlap, fewer than the per-IP limit holds.
IN_FLIGHT = 16


@pytest.fixture
async def carrier(settings: Settings) -> AsyncIterator[Harness]:
    """Every limit on at its default (the tests' cheap argon2 keeps 2,000 logins quick),
    behind one trusted proxy that names the carrier's address."""
    defaults = Settings.from_env({"APP_ENV": "test", "JWT_SECRET_KEY": secrets.token_urlsafe(48)})
    limited = replace(
        settings,
        rate_limits_enabled=True,
        trusted_proxy_hops=1,
        login_rate_limit=defaults.login_rate_limit,
        register_rate_limit=defaults.register_rate_limit,
        register_attempt_limit=defaults.register_attempt_limit,
        login_failure_limit=defaults.login_failure_limit,
        login_unknown_limit=defaults.login_unknown_limit,
    )
    _, harness = await start_harness(limited)
    emails: list[str] = []
    harness.created = emails  # type: ignore[attr-defined]
    try:
        async with harness.client:
            yield harness
    finally:
        await stop_harness(harness, *emails)


async def _bounded(calls: list[Callable[[], Awaitable[httpx.Response]]]) -> list[int]:
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def one(call: Callable[[], Awaitable[httpx.Response]]) -> int:
        async with gate:
            return (await call()).status_code

    return list(await asyncio.gather(*(one(call) for call in calls)))


def _login(harness: Harness, email: str, password: str) -> Callable[[], Awaitable[httpx.Response]]:
    return lambda: harness.client.post(
        "/auth/login",
        json={"email": email, "password": password},
        headers={"X-Forwarded-For": CARRIER_IP},
    )


def _register(harness: Harness, email: str) -> Callable[[], Awaitable[httpx.Response]]:
    harness.created.append(email)  # type: ignore[attr-defined]
    return lambda: harness.client.post(
        "/auth/register",
        json={"email": email, "password": PASSWORD},
        headers={"X-Forwarded-For": CARRIER_IP},
    )


async def test_2000_users_behind_one_ipv4_log_in_without_refusals_and_guessing_is_still_limited(
    carrier: Harness, database_url: str
) -> None:
    prefix = f"nat-{uuid.uuid4().hex[:10]}"
    emails = await seed_users(
        database_url,
        2000,
        password=PASSWORD,
        email_prefix=prefix,
        password_hash=hash_password(PASSWORD, carrier.resources.settings),
    )
    try:
        statuses = await _bounded([_login(carrier, email, PASSWORD) for email in emails])
        print(
            f"2,000 correct logins from {CARRIER_IP}: 200s {statuses.count(200)}, refused "
            f"(429) {statuses.count(429)}, other {2000 - statuses.count(200) - statuses.count(429)}"
        )
        assert statuses == [200] * 2000
        # The same address guessing: LOGIN_RATE_LIMIT's 30 failures, then 429, whatever
        # the account (each guess on an account of its own, under its own limit).
        guesses = [
            (await _login(carrier, email, "a wrong guess, surely")()) for email in emails[:31]
        ]
        assert [g.status_code for g in guesses[:30]] == [401] * 30
        assert_problem(guesses[30], 429, "rate_limited")
        assert guesses[30].headers["RateLimit-Limit"] == "30"
        print(f"then wrong passwords from {CARRIER_IP}: 30 answered 401, the 31st 429")
        # And honest users behind it are refused too while it guesses: the limit is the IP's.
        locked = await _login(carrier, emails[100], PASSWORD)()
        assert_problem(locked, 429, "rate_limited")
    finally:
        await delete_seeded(database_url, prefix)


async def test_500_registrations_behind_one_ipv4_with_default_limits_and_what_stops_a_script(
    carrier: Harness,
) -> None:
    tag = uuid.uuid4().hex[:8]
    launch = [f"launch-{tag}-{n}@example.com" for n in range(500)]
    statuses = await _bounded([_register(carrier, email) for email in launch])
    print(
        f"500 registrations from {CARRIER_IP}: 201s {statuses.count(201)}, 429s "
        f"{statuses.count(429)}"
    )
    assert statuses == [201] * 500
    # A script probing which addresses have accounts: REGISTER_ATTEMPT_LIMIT counts the
    # failures (60 an hour), and the 61st attempt is refused before any work.
    probes = [(await _register(carrier, email)()).status_code for email in launch[:61]]
    assert probes == [409] * 60 + [429]
    print(f"then probing taken addresses: 409s {probes.count(409)}, then 429")
