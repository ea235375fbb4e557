"""Postgres or Redis down: 503 service_unavailable where needed, liveness unaffected."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import pytest

from api.config.settings import Settings
from api.edge.bridge import AsgiApp
from api.security.keys import KeySet
from api.security.tokens import TokenIssuer
from tests.integration.conftest import Harness, start_harness
from tests.integration.problems import assert_problem

CLOSED_REDIS = "redis://127.0.0.1:1/0"
CLOSED_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:1/unreachable"


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[tuple[AsgiApp, Harness]]:
    asgi, harness = await start_harness(settings)
    try:
        yield asgi, harness
    finally:
        await harness.client.aclose()
        await asgi.runtime.stop()


def access_token(asgi: AsgiApp, settings: Settings) -> str:
    tokens = TokenIssuer(settings, KeySet.from_settings(settings)).issue(
        user_id=uuid.uuid4(), role="user", session_id=uuid.uuid4(), fresh=True
    )
    return tokens.access_token


async def test_redis_down_makes_guarded_route_service_unavailable(settings: Settings) -> None:
    down = replace(settings, redis_url=CLOSED_REDIS, redis_timeout=0.5)
    async with serving(down) as (asgi, harness):
        token = access_token(asgi, down)
        response = await harness.client.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert_problem(response, 503, "service_unavailable")


async def test_redis_down_makes_readyz_name_redis(settings: Settings) -> None:
    down = replace(settings, redis_url=CLOSED_REDIS, redis_timeout=0.5)
    async with serving(down) as (_, harness):
        response = await harness.client.get("/readyz")
    body = assert_problem(response, 503, "service_unavailable")
    assert body["checks"] == {"postgres": "ok", "redis": "unavailable"}
    assert "redis" in body["detail"]


async def test_postgres_down_makes_login_service_unavailable(settings: Settings) -> None:
    down = replace(settings, database_url=CLOSED_POSTGRES, db_pool_timeout=0.5)
    async with serving(down) as (_, harness):
        response = await harness.client.post(
            "/auth/login",
            json={"email": "a@example.com", "password": "a long enough passphrase"},
        )
    assert_problem(response, 503, "service_unavailable")


async def test_postgres_down_makes_readyz_name_postgres(settings: Settings) -> None:
    down = replace(settings, database_url=CLOSED_POSTGRES, db_pool_timeout=0.5)
    async with serving(down) as (_, harness):
        response = await harness.client.get("/readyz")
    body = assert_problem(response, 503, "service_unavailable")
    assert body["checks"] == {"postgres": "unavailable", "redis": "ok"}
    assert "postgres" in body["detail"]


@pytest.mark.parametrize(
    "down",
    [
        {"redis_url": CLOSED_REDIS, "redis_timeout": 0.5},
        {"database_url": CLOSED_POSTGRES, "db_pool_timeout": 0.5},
    ],
    ids=["redis-down", "postgres-down"],
)
async def test_healthz_stays_ok_with_a_store_down(settings: Settings, down: dict[str, Any]) -> None:
    async with serving(replace(settings, **down)) as (_, harness):
        response = await harness.client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
