"""The README's flow against the real server: register, login, me; every 204/HEAD path too."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
from redis.asyncio import Redis

from api.config.settings import Settings
from tests.e2e.conftest import Users

WORKERS = 2


async def test_register_login_me_over_real_server(http: httpx.AsyncClient, users: Users) -> None:
    email = await users.register(http)
    tokens = await users.login(http, email)
    response = await http.get("/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert response.status_code == 200
    assert response.json()["email"] == email


async def test_head_request_is_answered_without_body(http: httpx.AsyncClient) -> None:
    response = await http.head("/healthz")
    assert response.status_code == 200
    assert response.content == b""


async def test_workers_reuse_pooled_connections(
    http: httpx.AsyncClient, e2e_settings: Settings, pg: asyncpg.Connection, redis_url: str
) -> None:
    """200 requests that each use Postgres and Redis open no connection beyond the pools."""
    name = e2e_settings.db_application_name
    redis = Redis.from_url(redis_url, decode_responses=True)
    seen_backends: set[int] = set()
    seen_clients: set[str] = set()
    done = asyncio.Event()

    async def watch() -> None:
        # Sampled while requests run: a connection per request would show up here.
        while not done.is_set():
            rows = await pg.fetch(
                "SELECT pid FROM pg_stat_activity WHERE application_name = $1", name
            )
            seen_backends.update(row["pid"] for row in rows)
            clients = await redis.client_list()
            seen_clients.update(c["id"] for c in clients if c["name"] == name)
            await asyncio.sleep(0.01)

    async def received() -> int:
        return int((await redis.info("stats"))["total_connections_received"])

    try:
        before = await received()
        watcher = asyncio.create_task(watch())
        for _ in range(4):
            responses = await asyncio.gather(*(http.get("/readyz") for _ in range(50)))
            assert {r.status_code for r in responses} == {200}
        done.set()
        await watcher
        opened_redis = await received() - before
    finally:
        await redis.aclose()

    cap_pg = e2e_settings.db_pool_size * WORKERS
    cap_redis = e2e_settings.redis_pool_size * WORKERS
    assert 0 < len(seen_backends) <= cap_pg, seen_backends
    assert 0 < len(seen_clients) <= cap_redis, seen_clients
    assert opened_redis <= cap_redis, f"{opened_redis} Redis connections for 200 requests"


async def test_metrics_sum_every_worker(http: httpx.AsyncClient) -> None:
    def healthz_count(text: str) -> float:
        for line in text.splitlines():
            if (
                line.startswith("auth_api_requests_total{")
                and 'route="/healthz"' in line
                and ('status="200"' in line and 'method="GET"' in line)
            ):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    before = healthz_count((await http.get("/metrics")).text)
    await asyncio.gather(*(http.get("/healthz") for _ in range(40)))
    after = healthz_count((await http.get("/metrics")).text)
    # Connections spread over both workers; the exposition must add them up.
    assert after - before == 40
