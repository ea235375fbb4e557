"""What each hot route costs, counted on the wire: every statement Postgres receives
(BEGIN, COMMIT and ROLLBACK included) and every Redis command (a pipeline counts once)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import event

from api.config.settings import Settings
from tests.integration.conftest import Harness, bearer, start_harness, stop_harness

EMAIL = "round-trips@example.com"


@pytest.fixture
async def committing(settings: Settings) -> AsyncIterator[Harness]:
    """A harness on the app's own pools, as served: its writes commit, and are removed after."""
    _, harness = await start_harness(settings)
    try:
        async with harness.client:
            yield harness
    finally:
        await stop_harness(harness, EMAIL)


@asynccontextmanager
async def count_io(harness: Harness) -> AsyncIterator[dict[str, list[str]]]:
    """Record what the app sends to Postgres (asyncpg's query log) and to Redis."""
    sent: dict[str, list[str]] = {"postgres": [], "redis": []}
    redis = harness.resources.redis
    original_execute = redis.execute_command

    async def counting_execute(*args: Any, **kwargs: Any) -> Any:
        sent["redis"].append(str(args[0]))
        return await original_execute(*args, **kwargs)

    def log_statement(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent["postgres"].append(statement.split()[0].upper())

    def log(record: Any) -> None:
        # asyncpg's own log holds the simple queries: BEGIN, COMMIT, ROLLBACK.
        sent["postgres"].append(record.query.split()[0].upper().rstrip(";"))

    def on_checkout(dbapi_connection: Any, *_: Any) -> None:
        dbapi_connection.driver_connection.add_query_logger(log)

    def on_checkin(dbapi_connection: Any, *_: Any) -> None:
        dbapi_connection.driver_connection.remove_query_logger(log)

    engine = harness.resources.engine.sync_engine
    redis.execute_command = counting_execute  # type: ignore[method-assign]
    event.listen(engine, "before_cursor_execute", log_statement)
    event.listen(engine.pool, "checkout", on_checkout)
    event.listen(engine.pool, "checkin", on_checkin)
    try:
        yield sent
        # asyncpg hands its query log to the loggers on the next turns of the loop.
        await asyncio.sleep(0.05)
    finally:
        redis.execute_command = original_execute  # type: ignore[method-assign]
        event.remove(engine, "before_cursor_execute", log_statement)
        event.remove(engine.pool, "checkout", on_checkout)
        event.remove(engine.pool, "checkin", on_checkin)


async def test_verify_costs_one_redis_round_trip_and_no_sql(committing: Harness) -> None:
    await committing.register(EMAIL)
    tokens = await committing.login(EMAIL)
    async with count_io(committing) as sent:
        response = await committing.client.get(
            "/auth/verify", headers=bearer(tokens["access_token"])
        )
    assert response.status_code == 204
    assert sent == {"postgres": [], "redis": ["MGET"]}


async def test_verify_and_me_cost_no_redis_round_trip_once_the_revocation_cache_holds_the_answer(
    settings: Settings,
) -> None:
    _, harness = await start_harness(replace(settings, revocation_cache=True))
    try:
        async with harness.client:
            listener = harness.resources.invalidations
            assert listener is not None
            await asyncio.wait_for(listener.confirmed.wait(), 30)
            await harness.register(EMAIL)
            tokens = await harness.login(EMAIL)
            auth = bearer(tokens["access_token"])
            async with count_io(harness) as first:
                assert (await harness.client.get("/auth/verify", headers=auth)).status_code == 204
            async with count_io(harness) as again:
                assert (await harness.client.get("/auth/verify", headers=auth)).status_code == 204
                assert (await harness.client.get("/me", headers=auth)).status_code == 200
    finally:
        await stop_harness(harness, EMAIL)
    assert first == {"postgres": [], "redis": ["MGET"]}
    assert again == {"postgres": ["SELECT"], "redis": []}


async def test_me_costs_one_redis_round_trip_and_one_statement_without_a_transaction(
    committing: Harness,
) -> None:
    await committing.register(EMAIL)
    tokens = await committing.login(EMAIL)
    async with count_io(committing) as sent:
        response = await committing.client.get("/me", headers=bearer(tokens["access_token"]))
    assert response.status_code == 200
    # Sent at the same time by the /me lane (api/me/lane.py): one round trip of waiting.
    print(f"/me sends {sent}")
    assert sent == {"postgres": ["SELECT"], "redis": ["MGET"]}


async def test_login_costs_two_statements_and_no_transaction(committing: Harness) -> None:
    await committing.register(EMAIL)
    async with count_io(committing) as sent:
        await committing.login(EMAIL)
    print(f"login sends {sent}")
    # The session's INSERT and its audit event's are one statement: WITH ... INSERT.
    assert sent["postgres"] == ["SELECT", "WITH"]


async def test_refresh_round_trips_are_counted(committing: Harness) -> None:
    await committing.register(EMAIL)
    tokens = await committing.login(EMAIL)
    async with count_io(committing) as sent:
        response = await committing.client.post(
            "/auth/refresh", headers=bearer(tokens["refresh_token"])
        )
    assert response.status_code == 200
    print(f"refresh sends {sent}")
    assert sent["redis"] == ["MGET"]
    # The user's row and the rotation with its audit event (one WITH ... UPDATE ...
    # INSERT statement) in one transaction (the order of the log is not the wire's:
    # asyncpg sends BEGIN lazily, with the first statement).
    assert sorted(sent["postgres"]) == ["BEGIN", "COMMIT", "SELECT", "WITH"]
