"""scripts.seed: bulk-created users exist once, can log in, and are deleted by prefix."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from scripts.seed import count_seeded, delete_seeded, seed_email, seed_users
from tests.integration.conftest import Harness

PASSWORD = "a seeded load-test passphrase"
COUNT = 200


@pytest.fixture
async def prefix(database_url: str) -> AsyncIterator[str]:
    """A prefix of this test's own; its users are deleted however the test ends."""
    name = f"seedtest-{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        await delete_seeded(database_url, name)


# `prefix` comes before `harness`, so the harness's transaction (which may rehash the
# logged-in user's password) is rolled back before the seeded rows are deleted.
async def test_seeded_users_exist_once_and_can_log_in(
    database_url: str, prefix: str, harness: Harness
) -> None:
    emails = await seed_users(database_url, COUNT, password=PASSWORD, email_prefix=prefix)

    assert emails == [seed_email(prefix, i) for i in range(COUNT)]
    assert await count_seeded(database_url, prefix) == COUNT
    tokens = await harness.login(emails[COUNT // 2], PASSWORD)
    assert tokens["token_type"] == "Bearer"


async def test_seeding_again_skips_existing_users(database_url: str, prefix: str) -> None:
    await seed_users(database_url, 10, password=PASSWORD, email_prefix=prefix, batch=4)

    await seed_users(database_url, 15, password=PASSWORD, email_prefix=prefix, batch=4)

    assert await count_seeded(database_url, prefix) == 15


async def test_delete_seeded_removes_only_that_prefix(database_url: str, prefix: str) -> None:
    longer = f"{prefix}-2"  # its emails start like prefix's own: "<prefix>-2-0@load.example.com"
    try:
        await seed_users(database_url, 3, password=PASSWORD, email_prefix=prefix)
        await seed_users(database_url, 3, password=PASSWORD, email_prefix=longer)

        assert await delete_seeded(database_url, prefix) == 3

        assert await count_seeded(database_url, longer) == 3
    finally:
        await delete_seeded(database_url, longer)
