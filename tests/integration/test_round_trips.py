"""The hot path's cost, counted: /auth/verify makes one Redis round trip and no SQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from tests.integration.conftest import Harness, bearer


@contextmanager
def count_io(harness: Harness) -> Iterator[dict[str, int]]:
    """Count Redis commands (pipelines count once) and SQL statements sent by the app."""
    counts = {"redis": 0, "sql": 0}
    redis = harness.runtime.redis
    original_execute = redis.execute_command

    async def counting_execute(*args: Any, **kwargs: Any) -> Any:
        counts["redis"] += 1
        return await original_execute(*args, **kwargs)

    def on_sql(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        # The harness turns each unit of work into a savepoint of the test's transaction.
        if not statement.startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")):
            counts["sql"] += 1

    sync_engine = harness.runtime.engine.sync_engine
    redis.execute_command = counting_execute  # type: ignore[method-assign]
    event.listen(sync_engine, "before_cursor_execute", on_sql)
    try:
        yield counts
    finally:
        redis.execute_command = original_execute  # type: ignore[method-assign]
        event.remove(sync_engine, "before_cursor_execute", on_sql)


async def test_verify_costs_one_redis_round_trip_and_no_sql(harness: Harness) -> None:
    await harness.register("hot@example.com")
    tokens = await harness.login("hot@example.com")
    with count_io(harness) as counts:
        response = await harness.client.get("/auth/verify", headers=bearer(tokens["access_token"]))
    assert response.status_code == 204
    assert counts == {"redis": 1, "sql": 0}


async def test_me_costs_one_redis_round_trip_and_one_query(harness: Harness) -> None:
    await harness.register("hot@example.com")
    tokens = await harness.login("hot@example.com")
    with count_io(harness) as counts:
        response = await harness.client.get("/me", headers=bearer(tokens["access_token"]))
    assert response.status_code == 200
    assert counts == {"redis": 1, "sql": 1}
