"""One email normalisation (db.emails) for registration, login and the account limit.

Postgres's lower() and Python's disagreed: `İvan…@example.com` registered and could
never log in, and `straße`/`STRASSE` made two accounts. These tests write committed
rows (concurrent requests need their own connections), and delete them afterwards.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from api.config.settings import Settings
from tests.integration.conftest import Harness, start_harness, stop_harness
from tests.integration.problems import assert_problem

PASSWORD = "a long enough passphrase"
ROUNDS = 10


def _forms(tag: str) -> dict[str, list[str]]:
    """Per account (keyed by its name here): spellings that must all be that one account."""
    return {
        "dotted capital I": [f"İvan.{tag}@example.com", f"i\u0307van.{tag}@Example.com"],
        "sharp s": [
            f"Straße.{tag}@example.com",
            f"STRASSE.{tag}@example.com",
            f"STRAẞE.{tag}@EXAMPLE.com",
            f"strasse.{tag}@example.com",
        ],
        "greek final sigma": [
            f"ΣΊΣΥΦΟΣ.{tag}@example.com",
            f"σίσυφος.{tag}@example.com",
            f"σίσυφοσ.{tag}@example.com",
        ],
        "fullwidth": [f"ｊｏｈｎ.{tag}@ｅｘａｍｐｌｅ.com", f"John.{tag}@example.com"],  # noqa: RUF001
        "ligature and mixed case": [f"ﬁle.{tag}@example.com", f"FiLe.{tag}@ExAmPlE.CoM"],
    }


@pytest.fixture
async def committed(settings: Settings) -> AsyncIterator[Harness]:
    """A harness whose writes commit; every address it was given is deleted afterwards."""
    _, harness = await start_harness(settings)
    harness.created = []  # type: ignore[attr-defined]
    try:
        async with harness.client:
            yield harness
    finally:
        await stop_harness(harness, *harness.created)  # type: ignore[attr-defined]


async def _register(harness: Harness, email: str) -> httpx.Response:
    harness.created.append(email)  # type: ignore[attr-defined]
    return await harness.client.post("/auth/register", json={"email": email, "password": PASSWORD})


async def _login(
    harness: Harness, email: str, password: str = PASSWORD, ip: str = "10.1.0.1"
) -> httpx.Response:
    return await harness.client.post(
        "/auth/login",
        json={"email": email, "password": password},
        headers={"X-Forwarded-For": ip},
    )


async def test_non_ascii_addresses_register_and_log_in_with_every_spelling(
    committed: Harness,
) -> None:
    refused: list[tuple[str, int]] = []
    logins = 0
    for name, (registered, *others) in _forms(uuid.uuid4().hex[:8]).items():
        response = await _register(committed, f"  {registered} ")
        assert response.status_code == 201, (name, response.text)
        for spelling in (registered, *others):
            login = await _login(committed, spelling)
            logins += 1
            if login.status_code != 200:
                refused.append((spelling, login.status_code))
    print(f"logins refused: {len(refused)} of {logins}")
    assert refused == []


async def test_response_email_is_the_address_as_registered_trimmed(committed: Harness) -> None:
    tag = uuid.uuid4().hex[:8]
    response = await _register(committed, f"  İvan.Petrov.{tag}@Example.com ")
    assert response.status_code == 201
    # Trimmed; the domain is lower-cased by the address syntax check (IDNA), the
    # local part is kept as typed.
    assert response.json()["email"] == f"İvan.Petrov.{tag}@example.com"


async def test_spellings_of_one_address_registered_at_once_make_one_account(
    committed: Harness,
) -> None:
    statuses: Counter[int] = Counter()
    accounts_per_address: Counter[int] = Counter()
    for _ in range(ROUNDS):
        for spellings in _forms(uuid.uuid4().hex[:8]).values():
            responses = await asyncio.gather(*(_register(committed, s) for s in spellings))
            statuses.update(r.status_code for r in responses)
            accounts_per_address[sum(r.status_code == 201 for r in responses)] += 1
            for response in responses:
                if response.status_code != 201:
                    assert_problem(response, 409, "email_taken")
    print(
        f"registrations: 201 x {statuses[201]}, 409 x {statuses[409]}; "
        f"addresses by accounts made: {dict(accounts_per_address)}"
    )
    assert set(accounts_per_address) == {1}


async def test_failed_logins_under_any_spelling_count_against_one_account(
    settings: Settings,
) -> None:
    limited = replace(
        settings, rate_limits_enabled=True, login_failure_limit="3/15 minutes", trusted_proxy_hops=1
    )
    _, harness = await start_harness(limited)
    tag = uuid.uuid4().hex[:8]
    spellings = _forms(tag)["sharp s"]
    try:
        async with harness.client:
            for n, spelling in enumerate(spellings[:3]):
                wrong = await _login(harness, spelling, "wrong password!!", f"10.1.1.{n}")
                assert wrong.status_code == 401
            refused = await _login(harness, spellings[3], PASSWORD, "10.1.2.1")
            assert_problem(refused, 429, "rate_limited")
    finally:
        await stop_harness(harness)


async def test_address_too_long_once_normalised_is_a_validation_error(committed: Harness) -> None:
    # 21 x U+FDFA is 63 bytes of local part, and 378 letters once NFKC spells it out.
    response = await _register(committed, "\ufdfa" * 21 + "@example.com")
    body = assert_problem(response, 422, "validation_error")
    assert [e["field"] for e in body["errors"]] == ["email"]
