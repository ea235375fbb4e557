"""Database.driver_connection: asyncpg's own connection from the engine's pool. A server
that drops it mid-read is `StoreUnavailable` (503), and the broken connection leaves the
pool, so the next read gets a live one instead of failing again."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from api.config.settings import Settings
from db.errors import StoreUnavailable
from db.users import driver_profile
from tests.integration.conftest import start_harness


async def test_a_connection_dropped_mid_read_is_unavailable_and_leaves_the_pool(
    settings: Settings,
) -> None:
    asgi, harness = await start_harness(settings)
    database = harness.resources.database
    try:
        async with database.driver_connection() as connection:
            pid = connection.get_server_pid()
        killer = await asyncpg.connect(settings.database_url.replace("+asyncpg", "", 1))
        try:
            assert await killer.fetchval("SELECT pg_terminate_backend($1)", pid)
        finally:
            await killer.close()
        with pytest.raises(StoreUnavailable):
            async with database.driver_connection() as connection:
                assert connection.get_server_pid() == pid
                await driver_profile(connection, str(uuid.uuid4()))
        for _ in range(3):
            async with database.driver_connection() as connection:
                assert connection.get_server_pid() != pid
                assert await driver_profile(connection, str(uuid.uuid4())) is None
    finally:
        await harness.client.aclose()
        await asgi.runtime.stop()
