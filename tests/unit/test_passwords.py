"""Password rules of registration, and argon2id hashing off the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from api.domain.errors import HashingBusy
from api.errors import problem_parts
from api.security.passwords import (
    MAX_PASSWORD_LENGTH,
    Passwords,
    common_passwords,
    password_problems,
)

GOOD = "correct horse battery staple"
COMMON = "password1234"


@pytest.fixture
def passwords() -> Iterator[Passwords]:
    hasher = Passwords(
        memory_kib=1024, time_cost=1, parallelism=1, workers=2, queue_max=8, wait_budget=60
    )
    yield hasher
    hasher.close()


def test_shipped_common_password_list_is_large() -> None:
    assert len(common_passwords()) >= 10_000


def test_password_shorter_than_min_length_is_a_problem() -> None:
    assert password_problems("a" * 11, min_length=12)
    assert password_problems("a" * 19, min_length=20)


def test_password_of_exactly_min_length_is_fine() -> None:
    assert password_problems("unusual-pass", min_length=12) == []


def test_password_longer_than_1024_characters_is_a_problem() -> None:
    assert password_problems("x" * (MAX_PASSWORD_LENGTH + 1), min_length=12)
    assert password_problems("xy" * (MAX_PASSWORD_LENGTH // 2), min_length=12) == []


@pytest.mark.parametrize("variant", [COMMON, COMMON.upper(), "PassWord1234"])
def test_common_password_is_a_problem_whatever_its_case(variant: str) -> None:
    assert COMMON in common_passwords()
    assert password_problems(variant, min_length=12)


def test_good_password_has_no_problems() -> None:
    assert password_problems(GOOD, min_length=12) == []


async def test_hash_is_argon2id_and_verifies(passwords: Passwords) -> None:
    password_hash = await passwords.hash(GOOD)
    assert password_hash.startswith("$argon2id$")
    assert await passwords.verify(password_hash, GOOD) is True


async def test_wrong_password_does_not_verify(passwords: Passwords) -> None:
    password_hash = await passwords.hash(GOOD)
    assert await passwords.verify(password_hash, GOOD + "!") is False


async def test_garbage_hash_does_not_verify(passwords: Passwords) -> None:
    assert await passwords.verify("not a hash", GOOD) is False
    assert await passwords.verify("$argon2id$v=19$garbage", GOOD) is False


async def test_hash_made_with_other_parameters_needs_rehash(passwords: Passwords) -> None:
    other = Passwords(
        memory_kib=2048, time_cost=2, parallelism=1, workers=1, queue_max=8, wait_budget=60
    )
    try:
        old_hash = await other.hash(GOOD)
    finally:
        other.close()
    assert passwords.needs_rehash(old_hash) is True
    assert passwords.needs_rehash(await passwords.hash(GOOD)) is False


async def test_checks_beyond_the_queue_bound_are_refused_at_once() -> None:
    # OWASP cost: each check takes long enough for all 12 to arrive while 1 runs and 2 wait.
    bounded = Passwords(
        memory_kib=19456, time_cost=2, parallelism=1, workers=1, queue_max=2, wait_budget=60
    )
    try:
        password_hash = await bounded.hash(GOOD)
        outcomes = await asyncio.gather(
            *(bounded.verify(password_hash, GOOD) for _ in range(12)), return_exceptions=True
        )
        busy = [o for o in outcomes if isinstance(o, HashingBusy)]
        print(f"refused: {len(busy)} of 12, checked: {outcomes.count(True)}")
        assert outcomes.count(True) == 3
        assert len(busy) == 9
        status, headers, _ = problem_parts(busy[0])
        assert status == 503 and ("Retry-After", "2") in headers
        # Once the queue drains, checks are served again.
        assert await bounded.verify(password_hash, GOOD) is True
    finally:
        bounded.close()
