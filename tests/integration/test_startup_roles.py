"""A worker refuses to start while users hold a role ROLE_PERMISSIONS does not name."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from api.config.settings import Settings
from api.runtime import StartupRefused
from tests.integration.conftest import start_harness


async def test_a_role_missing_from_the_setting_stops_the_worker(settings: Settings) -> None:
    engine = create_async_engine(settings.database_url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            transaction = await connection.begin()
            await connection.execute(
                text(
                    "INSERT INTO users (id, email, email_normalised, password_hash, role) "
                    "VALUES (gen_random_uuid(), 'odd@example.com', 'odd@example.com', 'x',"
                    " 'auditor')"
                )
            )
            with pytest.raises(StartupRefused) as refused:
                await start_harness(settings, bind=connection)
            message = str(refused.value)
            print(f"start-up refused: {message}")
            assert "auditor" in message and "ROLE_PERMISSIONS" in message
            assert "\n" not in message
            widened = replace(
                settings,
                role_permissions={**settings.role_permissions, "auditor": ("audit:read",)},
            )
            asgi, _ = await start_harness(widened, bind=connection)
            await asgi.runtime.stop()
            await transaction.rollback()
    finally:
        await engine.dispose()
