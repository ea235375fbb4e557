"""Login and registration rate limits: counted in Redis, answered before any hashing."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import httpx
import pytest

from api.config.settings import Settings
from tests.integration.conftest import Harness, bearer, start_harness, stop_harness
from tests.integration.problems import assert_problem, without_request_id
from tests.redis_server import OwnRedis

PASSWORD = "a long enough passphrase"


@pytest.fixture
async def limited(settings: Settings) -> AsyncIterator[Harness]:
    """An app with small limits, behind one trusted proxy so tests can vary the client IP."""
    small = replace(
        settings,
        rate_limits_enabled=True,
        login_rate_limit="3/minute",
        register_rate_limit="2/hour",
        register_attempt_limit="6/hour",
        login_failure_limit="3/15 minutes",
        trusted_proxy_hops=1,
    )
    async with _harness(small) as harness:
        yield harness


@asynccontextmanager
async def _harness(settings: Settings) -> AsyncIterator[Harness]:
    _, harness = await start_harness(settings)
    emails: list[str] = []
    harness.created = emails  # type: ignore[attr-defined]
    try:
        async with harness.client:
            yield harness
    finally:
        await stop_harness(harness, *emails)


async def _register(harness: Harness, email: str, ip: str) -> httpx.Response:
    harness.created.append(email)  # type: ignore[attr-defined]
    return await harness.client.post(
        "/auth/register",
        json={"email": email, "password": PASSWORD},
        headers={"X-Forwarded-For": ip},
    )


async def _login(harness: Harness, email: str, password: str, ip: str) -> httpx.Response:
    return await harness.client.post(
        "/auth/login",
        json={"email": email, "password": password},
        headers={"X-Forwarded-For": ip},
    )


@pytest.fixture
def hashing_calls(limited: Harness) -> Iterator[list[str]]:
    """Every argon2 hash or verify the app runs: all go through Passwords._run's thread pool."""
    calls: list[str] = []
    passwords: Any = limited.resources.passwords
    original = passwords._run

    async def recording(func: Any, *args: Any) -> Any:
        calls.append(func.__name__)
        return await original(func, *args)

    passwords._run = recording
    yield calls
    passwords._run = original


def _assert_limited(response: httpx.Response) -> None:
    assert_problem(response, 429, "rate_limited")
    assert int(response.headers["Retry-After"]) > 0
    assert response.headers["RateLimit-Limit"] == "3"
    assert response.headers["RateLimit-Remaining"] == "0"
    assert int(response.headers["RateLimit-Reset"]) > 0


async def test_login_over_the_ip_limit_is_refused_before_hashing(
    limited: Harness, hashing_calls: list[str]
) -> None:
    for _ in range(3):
        response = await _login(limited, "nobody@example.com", "wrong password!!", "10.0.0.1")
        assert response.status_code == 401
    assert hashing_calls.count("_verify") == 3, "every refused password was checked"
    hashing_calls.clear()
    refused = await _login(limited, "nobody@example.com", "wrong password!!", "10.0.0.1")
    _assert_limited(refused)
    assert hashing_calls == []
    other_ip = await _login(limited, "nobody2@example.com", "wrong password!!", "10.0.0.2")
    assert other_ip.status_code == 401


async def test_simultaneous_wrong_logins_from_one_ip_check_at_most_its_limit(
    limited: Harness, hashing_calls: list[str]
) -> None:
    for round_number in range(5):
        ip = f"10.0.20.{round_number}"
        hashing_calls.clear()
        # A different address each: only the IP's limit (3 failures) stands in the way.
        responses = await asyncio.gather(
            *(
                _login(limited, f"g{round_number}-{n}@example.com", "wrong password!!", ip)
                for n in range(30)
            )
        )
        statuses = [r.status_code for r in responses]
        checked = hashing_calls.count("_verify")
        print(f"round {round_number}: 401s {statuses.count(401)} of 30, checks {checked}")
        assert statuses.count(401) + statuses.count(429) == 30
        assert statuses.count(401) == checked <= 3
        for response in responses:
            if response.status_code == 429:
                _assert_limited(response)


async def test_successful_logins_from_one_ip_do_not_count_against_its_limit(
    limited: Harness,
) -> None:
    await _register(limited, "nat@example.com", "10.0.21.1")
    for _ in range(10):
        assert (await _login(limited, "nat@example.com", PASSWORD, "10.0.21.2")).status_code == 200
    for n in range(3):
        wrong = await _login(limited, f"nat{n}@example.com", "wrong password!!", "10.0.21.2")
        assert wrong.status_code == 401
    _assert_limited(await _login(limited, "nat@example.com", PASSWORD, "10.0.21.2"))


async def test_malformed_logins_count_toward_the_ip_limit(limited: Harness) -> None:
    for _ in range(3):
        response = await limited.client.post(
            "/auth/login",
            content=b"{not json",
            headers={"Content-Type": "application/json", "X-Forwarded-For": "10.0.0.3"},
        )
        assert response.status_code == 400
    refused = await _login(limited, "a@example.com", PASSWORD, "10.0.0.3")
    _assert_limited(refused)


async def test_registration_over_the_ip_limit_is_refused(limited: Harness) -> None:
    assert (await _register(limited, "r1@example.com", "10.0.1.1")).status_code == 201
    assert (await _register(limited, "r2@example.com", "10.0.1.1")).status_code == 201
    refused = await _register(limited, "r3@example.com", "10.0.1.1")
    assert_problem(refused, 429, "rate_limited")
    assert refused.headers["RateLimit-Limit"] == "2"
    taken = await _register(limited, "r1@example.com", "10.0.1.2")
    assert_problem(taken, 409, "email_taken")


async def test_registrations_that_create_nothing_do_not_count_against_the_account_limit(
    limited: Harness,
) -> None:
    await _register(limited, "first@example.com", "10.0.1.3")  # 1 of the 2 accounts
    for _ in range(2):
        taken = await _register(limited, "first@example.com", "10.0.1.3")
        assert_problem(taken, 409, "email_taken")
    weak = await limited.client.post(
        "/auth/register",
        json={"email": "weak@example.com", "password": "short"},
        headers={"X-Forwarded-For": "10.0.1.3"},
    )
    assert_problem(weak, 422, "validation_error")
    # Four attempts so far, one account: the second account is still allowed.
    assert (await _register(limited, "second@example.com", "10.0.1.3")).status_code == 201
    refused = await _register(limited, "third@example.com", "10.0.1.3")
    assert_problem(refused, 429, "rate_limited")
    assert refused.headers["RateLimit-Limit"] == "2"


async def test_failed_registration_attempts_count_against_the_attempt_limit(
    limited: Harness,
) -> None:
    # Probing addresses for email_taken stops at REGISTER_ATTEMPT_LIMIT (6 here); the
    # account created first gave its attempt back.
    await _register(limited, "probed@example.com", "10.0.1.4")
    answers = [(await _register(limited, "probed@example.com", "10.0.1.4")) for _ in range(7)]
    assert [r.status_code for r in answers] == [409] * 6 + [429]
    assert answers[-1].headers["RateLimit-Limit"] == "6"
    assert int(answers[-1].headers["Retry-After"]) > 0
    elsewhere = await _register(limited, "probed@example.com", "10.0.1.5")
    assert_problem(elsewhere, 409, "email_taken")


async def test_simultaneous_registrations_create_at_most_the_limit(settings: Settings) -> None:
    small = replace(
        settings,
        rate_limits_enabled=True,
        register_rate_limit="3/hour",
        register_attempt_limit="100/hour",
        trusted_proxy_hops=1,
    )
    async with _harness(small) as harness:
        for round_number in range(3):
            ip = f"10.0.1.{10 + round_number}"
            taken = [f"taken{round_number}-{i}@example.com" for i in range(6)]
            for i, email in enumerate(taken):
                assert (await _register(harness, email, f"10.0.3.{i}")).status_code == 201
            new = [f"burst{round_number}-{i}@example.com" for i in range(6)]
            # Taken and new addresses at once: at most 3 accounts come out of the burst.
            answers = await asyncio.gather(*(_register(harness, e, ip) for e in taken + new))
            statuses = [r.status_code for r in answers]
            assert set(statuses[:6]) <= {409, 429} and set(statuses[6:]) <= {201, 429}
            burst = statuses.count(201)
            # At most the limit; none at all is fair too when the 409s held every place
            # for the moment they were being checked.
            assert burst <= 3, statuses
            # The 409s gave their reservations back: the IP gets exactly its 3 accounts.
            later = [(await _register(harness, e, ip)).status_code for e in new]
            created = burst + later.count(201)
            print(
                f"round {round_number}: burst 201s {burst}, 409s {statuses.count(409)}, "
                f"429s {statuses.count(429)} of 12; accounts created in all {created} of 3"
            )
            assert created == 3, (statuses, later)


async def test_failed_logins_from_many_ips_lock_the_account_even_for_the_right_password(
    limited: Harness, hashing_calls: list[str]
) -> None:
    await _register(limited, "victim@example.com", "10.0.2.1")
    for n in range(3):
        response = await _login(limited, "victim@example.com", "wrong password!!", f"10.0.3.{n}")
        assert response.status_code == 401
    hashing_calls.clear()
    refused = await _login(limited, "VICTIM@example.com", PASSWORD, "10.0.4.1")
    _assert_limited(refused)
    assert hashing_calls == []
    await _register(limited, "bystander@example.com", "10.0.2.2")
    assert (await _login(limited, "bystander@example.com", PASSWORD, "10.0.4.2")).status_code == 200


async def test_unknown_email_is_locked_like_a_known_one(limited: Harness) -> None:
    for n in range(3):
        await _login(limited, "ghost@example.com", "wrong password!!", f"10.0.5.{n}")
    _assert_limited(await _login(limited, "ghost@example.com", "wrong password!!", "10.0.6.1"))


async def test_without_trusted_proxies_forwarded_for_cannot_escape_the_ip_limit(
    settings: Settings,
) -> None:
    direct = replace(settings, rate_limits_enabled=True, login_rate_limit="3/minute")
    async with _harness(direct) as harness:
        for n in range(3):
            await _login(harness, "x@example.com", "wrong password!!", f"203.0.113.{n}")
        _assert_limited(await _login(harness, "x@example.com", "wrong password!!", "198.51.100.9"))


async def test_with_one_trusted_proxy_only_the_last_hop_counts(limited: Harness) -> None:
    for n in range(3):
        spoofed = f"1.1.1.{n}, 9.9.9.9"
        await _login(limited, f"s{n}@example.com", "wrong password!!", spoofed)
    _assert_limited(await _login(limited, "s9@example.com", "wrong password!!", "9.9.9.9"))
    fresh = await _login(limited, "s8@example.com", "wrong password!!", "9.9.9.8")
    assert fresh.status_code == 401


async def test_limits_switched_off_never_refuse(harness: Harness) -> None:
    for _ in range(12):
        response = await harness.client.post(
            "/auth/login", json={"email": "free@example.com", "password": "wrong password!!"}
        )
        assert response.status_code == 401


async def test_limits_fall_back_to_process_memory_while_redis_is_down(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    own = OwnRedis()
    own.start()
    try:
        fallback = replace(
            settings,
            redis_url=own.url,
            redis_timeout=1,
            rate_limits_enabled=True,
            login_rate_limit="2/minute",
        )
        async with _harness(fallback) as harness:
            assert (await _register(harness, "fb@example.com", "10.9.9.9")).status_code == 201
            own.stop()
            with caplog.at_level(logging.WARNING, logger="db.limits"):
                successes = [await _login_direct(harness, PASSWORD) for _ in range(3)]
                failures = [await _login_direct(harness, "wrong password!!") for _ in range(2)]
                third = await _login_direct(harness, PASSWORD)
            # Successes give their attempts back there too; the failures are counted.
            assert [r.status_code for r in successes] == [200] * 3, successes[0].text
            assert [r.status_code for r in failures] == [401] * 2
            assert_problem(third, 429, "rate_limited")
            assert any("fall back" in record.getMessage() for record in caplog.records)
            own.start()
    finally:
        own.stop()


async def _login_direct(harness: Harness, password: str) -> httpx.Response:
    return await harness.client.post(
        "/auth/login", json={"email": "fb@example.com", "password": password}
    )


async def test_unknown_email_costs_the_same_verification_as_a_wrong_password(
    limited: Harness, hashing_calls: list[str]
) -> None:
    await _register(limited, "known@example.com", "10.0.7.1")
    hashing_calls.clear()
    unknown = await _login(limited, "unknown@example.com", "wrong password!!", "10.0.7.2")
    unknown_calls = [c for c in hashing_calls if c == "_verify"]
    hashing_calls.clear()
    wrong = await _login(limited, "known@example.com", "wrong password!!", "10.0.7.3")
    assert unknown_calls == ["_verify"]
    assert [c for c in hashing_calls if c == "_verify"] == ["_verify"]
    assert unknown.status_code == wrong.status_code == 401
    assert without_request_id(unknown.json()) == without_request_id(wrong.json())
    assert set(unknown.headers) - {"date"} == set(wrong.headers) - {"date"}


async def _wrong_logins_at_once(harness: Harness, email: str, count: int) -> list[int]:
    # Each from its own IP: only the account's limit stands in the way.
    responses = await asyncio.gather(
        *(
            _login(harness, email, "wrong password!!", f"10.1.{n // 250}.{n % 250}")
            for n in range(count)
        )
    )
    for response in responses:
        if response.status_code == 429:
            _assert_limited(response)
    return [r.status_code for r in responses]


async def test_simultaneous_wrong_logins_check_at_most_the_limit_of_passwords(
    limited: Harness, hashing_calls: list[str]
) -> None:
    await _register(limited, "target@example.com", "10.0.8.1")
    hashing_calls.clear()
    statuses = await _wrong_logins_at_once(limited, "target@example.com", 30)
    checked = hashing_calls.count("_verify")
    print(f"401s: {statuses.count(401)} of 30, 429s: {statuses.count(429)}, checks: {checked}")
    assert statuses.count(401) + statuses.count(429) == 30
    assert statuses.count(401) <= 3
    assert checked <= 3


async def test_simultaneous_wrong_logins_for_an_unknown_email_check_at_most_the_limit(
    limited: Harness, hashing_calls: list[str]
) -> None:
    statuses = await _wrong_logins_at_once(limited, "nobody-at-all@example.com", 30)
    print(f"401s: {statuses.count(401)} of 30, checks: {hashing_calls.count('_verify')}")
    assert statuses.count(401) <= 3
    assert hashing_calls.count("_verify") <= 3


async def test_successful_logins_give_their_reservation_back(limited: Harness) -> None:
    await _register(limited, "regular@example.com", "10.0.8.2")
    for n in range(2):
        wrong = await _login(limited, "regular@example.com", "wrong password!!", f"10.0.10.{n}")
        assert wrong.status_code == 401
    # One slot is left: each success takes it and gives it back.
    for n in range(6):
        login = await _login(limited, "regular@example.com", PASSWORD, f"10.0.11.{n}")
        assert login.status_code == 200, login.text
    # Two failures so far: one more fits, the fourth is refused.
    last = await _login(limited, "regular@example.com", "wrong password!!", "10.0.12.1")
    assert last.status_code == 401
    _assert_limited(await _login(limited, "regular@example.com", PASSWORD, "10.0.12.2"))


async def _fresh_token(harness: Harness, email: str) -> str:
    await _register(harness, email, "10.0.13.1")
    response = await _login(harness, email, PASSWORD, "10.0.13.2")
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


async def test_wrong_current_passwords_at_once_count_against_the_account_limit(
    limited: Harness, hashing_calls: list[str]
) -> None:
    token = await _fresh_token(limited, "oracle@example.com")
    hashing_calls.clear()
    responses = await asyncio.gather(
        *(
            limited.client.post(
                "/me/password",
                json={"current_password": f"guess number {n:03}", "new_password": PASSWORD + "!"},
                headers=bearer(token),
            )
            for n in range(30)
        )
    )
    statuses = [r.status_code for r in responses]
    checked = hashing_calls.count("_verify")
    print(f"/me/password 401s: {statuses.count(401)} of 30, checks: {checked}")
    assert statuses.count(401) + statuses.count(429) == 30
    assert statuses.count(401) <= 3
    assert checked <= 3
    for response in responses:
        if response.status_code == 429:
            _assert_limited(response)
    # The same limit as login and account deletion: the right password waits too.
    _assert_limited(await _login(limited, "oracle@example.com", PASSWORD, "10.0.13.3"))
    deletion = await limited.client.request(
        "DELETE", "/me", json={"password": PASSWORD}, headers=bearer(token)
    )
    _assert_limited(deletion)


async def test_wrong_passwords_on_every_route_share_one_account_limit(limited: Harness) -> None:
    token = await _fresh_token(limited, "shared@example.com")
    change = await limited.client.post(
        "/me/password",
        json={"current_password": "wrong password!!", "new_password": PASSWORD + "!"},
        headers=bearer(token),
    )
    assert change.status_code == 401
    deletion = await limited.client.request(
        "DELETE", "/me", json={"password": "wrong password!!"}, headers=bearer(token)
    )
    assert deletion.status_code == 401
    login = await _login(limited, "shared@example.com", "wrong password!!", "10.0.14.1")
    assert login.status_code == 401
    _assert_limited(
        await limited.client.request(
            "DELETE", "/me", json={"password": PASSWORD}, headers=bearer(token)
        )
    )


async def test_account_reservations_hold_in_process_memory_while_redis_is_down(
    settings: Settings,
) -> None:
    own = OwnRedis()
    own.start()
    try:
        fallback = replace(
            settings,
            redis_url=own.url,
            redis_timeout=1,
            rate_limits_enabled=True,
            login_rate_limit="1000/minute",
            login_failure_limit="3/15 minutes",
            trusted_proxy_hops=1,
        )
        async with _harness(fallback) as harness:
            await _register(harness, "down@example.com", "10.0.15.1")
            own.stop()
            statuses = await _wrong_logins_at_once(harness, "down@example.com", 30)
            print(f"Redis down: 401s {statuses.count(401)} of 30, 429s {statuses.count(429)}")
            assert statuses.count(401) + statuses.count(429) == 30
            assert statuses.count(401) <= 3
            own.start()
    finally:
        own.stop()
